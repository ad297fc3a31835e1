//! Reading a month's records from the store for `patchwarden_core::report`: the changes, the
//! findings open at some moment of the month, the exceptions, the hosts and how many
//! inventories each sent. Everything is scoped to what the caller may see: a provider gets
//! only its own groups' hosts, their findings, the changes whose targets are all inside its
//! groups, and the exceptions that name only its hosts.
//!
//! The store is read with the queries it already has (every finding by id, every change,
//! the audit chain for the inventory scans) and the month is picked out here: no query of the
//! store interprets a report's month, so both backends answer alike by construction.

use std::collections::{BTreeSet, HashMap};

use jiff::Timestamp;
use patchwarden_api::v1::jobs::JobOutcome;
use patchwarden_core::report::{
    ChangeRecord, ExceptionRecord, ExceptionSpan, FindingRecord, HostRecord, InstallOutcome,
    InstallRecord, Month, MonthRecords, RingRecord,
};
use patchwarden_store::change::{ChangeFilter, StoredChange};
use patchwarden_store::exception::{ExceptionFilter, StoredException};
use patchwarden_store::{FindingFilter, Host, HostFilter, Job, JobFilter};
use uuid::Uuid;

use crate::access::Scope;
use crate::changes::{ChangeDoc, recorded};
use crate::error::ApiError;
use crate::state::AppState;

/// How many findings, hosts or audit events one read of the store brings.
const PAGE: u32 = 5_000;

/// The states of a change that has put packages on hosts: the report looks at these only.
const IMPLEMENTING: [&str; 8] = [
    "testing",
    "tested",
    "deploying",
    "verified",
    "closed",
    "failed",
    "rolled_back",
    "scheduled",
];

/// Every host the caller may see, by id.
pub(crate) async fn hosts(
    state: &AppState,
    scope: &Scope,
) -> Result<HashMap<Uuid, Host>, ApiError> {
    let mut out = HashMap::new();
    let mut after = None;
    loop {
        let page = state
            .store
            .list_hosts(&HostFilter {
                after,
                limit: Some(PAGE),
                ..HostFilter::default()
            })
            .await?;
        let full = page.len() as u32 == PAGE;
        after = page.last().map(|h| h.id);
        for h in page {
            if scope.admits_group(&h.group) {
                out.insert(h.id, h);
            }
        }
        if !full {
            return Ok(out);
        }
    }
}

/// Whether the caller may see the change: a provider one whose targets are all its own.
fn change_visible(doc: &ChangeDoc, scope: &Scope, hosts: &HashMap<Uuid, Host>) -> bool {
    match scope {
        Scope::All => true,
        Scope::Groups(_) => {
            doc.targets.groups.iter().all(|g| scope.admits_group(g))
                && doc.targets.hosts.iter().all(|h| hosts.contains_key(h))
                && doc
                    .rings
                    .iter()
                    .flat_map(|r| &r.hosts)
                    .all(|h| scope.admits_group(&h.group))
        }
    }
}

/// The report's record of a stored change and its jobs.
pub(crate) fn change_record(
    stored: &StoredChange,
    doc: &ChangeDoc,
    jobs: &HashMap<Uuid, Job>,
    hosts: &HashMap<Uuid, Host>,
) -> ChangeRecord {
    let mut systems: Vec<String> = doc
        .targets
        .groups
        .iter()
        .map(|g| format!("group {g}"))
        .collect();
    let mut names = BTreeSet::new();
    for h in &doc.targets.hosts {
        if let Some(host) = hosts.get(h) {
            names.insert(host.facts.hostname.clone());
        }
    }
    for h in doc.rings.iter().flat_map(|r| &r.hosts) {
        names.insert(h.hostname.clone());
    }
    systems.extend(names);
    let rings = doc
        .rings
        .iter()
        .map(|r| RingRecord {
            name: r.name.clone(),
            test: r.test,
            started_at: r.started_at,
            verified_at: r.verified_at,
            installs: r
                .hosts
                .iter()
                .map(|h| {
                    let job = h.job.and_then(|id| jobs.get(&id));
                    let outcome = if h.nothing_to_do {
                        InstallOutcome::NothingToDo
                    } else {
                        match job.and_then(recorded).map(|r| r.outcome) {
                            Some(JobOutcome::Succeeded) => InstallOutcome::Succeeded,
                            Some(JobOutcome::Failed) => InstallOutcome::Failed,
                            Some(JobOutcome::Refused) => InstallOutcome::Refused,
                            None => InstallOutcome::Pending,
                        }
                    };
                    InstallRecord {
                        host: h.hostname.clone(),
                        packages: h
                            .packages
                            .iter()
                            .map(|p| format!("{} {}", p.name, p.version))
                            .collect(),
                        outcome,
                        at: job.and_then(|j| j.finished_at),
                        rolled_back: h
                            .rollback_job
                            .and_then(|id| jobs.get(&id))
                            .is_some_and(|j| j.state.is_finished()),
                    }
                })
                .collect(),
        })
        .collect();
    ChangeRecord {
        number: stored.number.clone(),
        title: doc.title.clone(),
        systems,
        patches: doc
            .patches
            .iter()
            .map(|p| format!("{} {}", p.package, p.version))
            .collect(),
        patch_packages: doc.patches.iter().map(|p| p.package.clone()).collect(),
        risk: format!("{:?}", doc.risk).to_lowercase(),
        priority: doc.priority.clone(),
        restart_order: doc.restart_order.clone(),
        health_checks: doc.health_checks.len(),
        reboot_allowed: doc.reboot_allowed,
        change: doc.change.clone(),
        window: doc.window,
        rings,
        halted: doc.halted.clone(),
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

/// The jobs of a change, by id.
pub(crate) async fn change_jobs(
    state: &AppState,
    stored: &StoredChange,
    doc: &ChangeDoc,
) -> Result<HashMap<Uuid, Job>, ApiError> {
    if doc.rings.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(state
        .store
        .list_jobs(&JobFilter {
            created_by: Some(stored.number.clone()),
            ..JobFilter::default()
        })
        .await?
        .into_iter()
        .map(|j| (j.id, j))
        .collect())
}

/// The change with this number as the report reads it, if the caller may see it.
pub(crate) async fn one_change(
    state: &AppState,
    scope: &Scope,
    number: &str,
) -> Result<ChangeRecord, ApiError> {
    let stored = state
        .store
        .get_change(number)
        .await?
        .ok_or(ApiError::NotFound)?;
    let doc = ChangeDoc::parse(&stored)?;
    let hosts = hosts(state, scope).await?;
    if !change_visible(&doc, scope, &hosts) {
        return Err(ApiError::NotFound);
    }
    let jobs = change_jobs(state, &stored, &doc).await?;
    Ok(change_record(&stored, &doc, &jobs, &hosts))
}

/// How far apart in time two consecutive events of the audit chain may be out of order (servers
/// sharing a database append with their own clocks): the scan reads this much beyond the month
/// on both sides and filters by time.
const SCAN_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// The sequence number after which the audit chain's events are at or after `t` (events are
/// appended in time order, up to [`SCAN_SLACK`]): a binary search of a few reads of one event
/// each, rather than reading the chain from its start.
async fn first_event_before(state: &AppState, t: Timestamp) -> Result<i64, ApiError> {
    let Some(head) = state.store.audit_head().await? else {
        return Ok(0);
    };
    // Invariant: the event after `lo` may be at or after `t`; the event `hi` is.
    let (mut lo, mut hi) = (0_i64, head.seq + 1);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        // The event `mid` is the first after `mid - 1`.
        match state.store.audit_events(mid - 1, 1).await?.first() {
            Some(e) if e.entry.at < t => lo = mid,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// What the scope of an exception says in words, with hostnames.
fn scope_words(e: &StoredException, hosts: &HashMap<Uuid, Host>) -> String {
    let name = |id: &Uuid| {
        hosts
            .get(id)
            .map(|h| h.facts.hostname.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let mut parts: Vec<String> = e
        .scope
        .hosts
        .iter()
        .map(|h| format!("host {}", name(h)))
        .collect();
    parts.extend(
        e.scope
            .findings
            .iter()
            .map(|f| format!("{} {} on {}", f.advisory, f.package, name(&f.host))),
    );
    parts.join(", ")
}

/// The month's records for the caller's scope, as of `now`.
pub(crate) async fn month_records(
    state: &AppState,
    scope: &Scope,
    month: Month,
) -> Result<MonthRecords, ApiError> {
    let (start, end) = (month.start(), month.end());
    let hosts = hosts(state, scope).await?;

    // Exceptions that name only hosts the caller sees.
    let stored_exceptions: Vec<StoredException> = state
        .store
        .list_exceptions(&ExceptionFilter::default())
        .await?
        .into_iter()
        .filter(|e| e.scope.hosts_named().iter().all(|h| hosts.contains_key(h)))
        .collect();
    let spans: Vec<(&StoredException, ExceptionSpan)> = stored_exceptions
        .iter()
        .filter_map(|e| ExceptionSpan::of(&e.number, &e.exception).map(|s| (e, s)))
        .collect();

    // Findings open at some moment of the month.
    let mut findings = Vec::new();
    let mut after_id = None;
    loop {
        let page = state
            .store
            .list_findings(&FindingFilter {
                after_id,
                limit: Some(PAGE),
                ..FindingFilter::default()
            })
            .await?;
        let full = page.len() as u32 == PAGE;
        after_id = page.last().map(|f| f.id);
        for f in page {
            if f.first_seen >= end || f.closed_at.is_some_and(|c| c < start) {
                continue;
            }
            let Some(host) = hosts.get(&f.host) else {
                continue;
            };
            let exceptions = spans
                .iter()
                .filter(|(e, _)| e.scope.covers(f.host, &f.finding))
                .map(|(_, s)| s.clone())
                .collect();
            findings.push(FindingRecord {
                host: host.facts.hostname.clone(),
                group: host.group.clone(),
                vulnerability: f.finding.vulnerability.clone(),
                package: f.finding.package.clone(),
                class: f.classification.class,
                policy: f.classification.policy.clone(),
                rule: f.classification.rule.clone(),
                first_seen: f.first_seen,
                available_at: f.finding.available_at,
                due_at: f.classification.due_at,
                closed_at: f.closed_at,
                fixed_version: f.fixed_version.clone(),
                exceptions,
            });
        }
        if !full {
            break;
        }
    }

    // Changes that touched hosts and were updated since the month began: those implemented
    // in it, and later ones that may resubmit a failed install.
    let mut changes = Vec::new();
    let stored_changes = state
        .store
        .list_changes(&ChangeFilter {
            states: IMPLEMENTING.iter().map(|s| (*s).to_owned()).collect(),
            ..ChangeFilter::default()
        })
        .await?;
    for stored in stored_changes {
        if stored.updated_at < start {
            continue;
        }
        let doc = ChangeDoc::parse(&stored)?;
        if !change_visible(&doc, scope, &hosts) {
            continue;
        }
        let jobs = change_jobs(state, &stored, &doc).await?;
        changes.push(change_record(&stored, &doc, &jobs, &hosts));
    }

    // Inventory scans received in the month, from the audit chain: read from the month's
    // first event to its last, not the whole chain.
    let mut scans: HashMap<String, u32> = HashMap::new();
    let mut after_seq = first_event_before(state, start - SCAN_SLACK).await?;
    'chain: loop {
        let events = state.store.audit_events(after_seq, PAGE).await?;
        let full = events.len() as u32 == PAGE;
        after_seq = events.last().map_or(after_seq, |e| e.seq);
        for e in events {
            let t: Timestamp = e.entry.at;
            if t >= end + SCAN_SLACK {
                break 'chain;
            }
            if e.entry.action == "inventory.replace" && t >= start && t < end {
                *scans.entry(e.entry.object).or_default() += 1;
            }
        }
        if !full {
            break;
        }
    }
    let host_records = hosts
        .values()
        .map(|h| HostRecord {
            hostname: h.facts.hostname.clone(),
            group: h.group.clone(),
            last_seen: h.last_seen,
            scans: scans.get(&format!("host:{}", h.id)).copied().unwrap_or(0),
        })
        .collect();

    let exceptions = stored_exceptions
        .iter()
        .map(|e| ExceptionRecord {
            number: e.number.clone(),
            scope: scope_words(e, &hosts),
            exception: e.exception.clone(),
        })
        .collect();

    Ok(MonthRecords {
        changes,
        findings,
        exceptions,
        hosts: host_records,
    })
}
