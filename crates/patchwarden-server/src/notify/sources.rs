//! Where notifications come from: the audit chain (changes waiting for a decision, halted
//! rollouts, findings a sync opened or reclassified as Emergency) and a sweep for deadlines
//! (findings due soon or breached, windows about to open, exceptions about to end).
//!
//! Each notice carries a dedup key that names the event, not the moment it was found: a
//! finding breaches once (`finding:42:breached`), a window opens once per occurrence
//! (`window:NAME:START`), an audited event happens once (`…:SEQ`). The store keeps a key once
//! per destination, so sweeping again — or a second server sweeping — queues nothing new.

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use patchwarden_core::audit::{Actor, AuditEvent};
use patchwarden_core::policy::Class;
use patchwarden_store::change::ChangeFilter;
use patchwarden_store::exception::{ExceptionFilter, StoredException};
use patchwarden_store::notification::Enqueued;
use patchwarden_store::{FindingFilter, FindingState, Host, Store, StoreError, StoredFinding};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{EventKind, Notice, Settings, queue};
use crate::metrics::Metrics;
use crate::state::AppState;

/// Audit events read per query.
const AUDIT_BATCH: u32 = 500;
/// Findings read per query in a sweep.
const FINDINGS_PAGE: u32 = 1000;

/// Why a notification source failed; the next poll tries again.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the calendar: {0}")]
    Calendar(String),
}

/// Sets the notifier's place in the audit chain at its head when it has none (the first start
/// with notifications configured), so the history before it is not notified.
pub async fn start_cursor(store: &dyn Store, now: Timestamp) -> Result<(), StoreError> {
    if store.notification_cursor().await?.is_none() {
        let head = store.audit_head().await?.map_or(0, |h| h.seq);
        store.enqueue_notifications(&[], Some(head), now).await?;
    }
    Ok(())
}

/// Turns the audit events after the stored cursor into notifications, queueing them and moving
/// the cursor in one step per batch. Returns what was queued.
pub async fn follow_audit(
    state: &AppState,
    settings: &Settings,
    now: Timestamp,
) -> Result<Enqueued, SourceError> {
    let store = state.store.as_ref();
    start_cursor(store, now).await?;
    let mut total = Enqueued::default();
    loop {
        let cursor = store.notification_cursor().await?.unwrap_or(0);
        let events = store.audit_events(cursor, AUDIT_BATCH).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(total);
        };
        let mut notices = Vec::new();
        for event in &events {
            notices.extend(from_event(store, event).await?);
        }
        let done = queue(
            store,
            settings,
            Some(&state.metrics),
            &notices,
            Some(last),
            now,
        )
        .await?;
        total.queued += done.queued;
        total.duplicates += done.duplicates;
        if events.len() < AUDIT_BATCH as usize {
            return Ok(total);
        }
    }
}

/// The notices one audited event gives.
async fn from_event(store: &dyn Store, event: &AuditEvent) -> Result<Vec<Notice>, StoreError> {
    let e = &event.entry;
    let after_state = e
        .after
        .as_ref()
        .and_then(|a| a.get("state"))
        .and_then(Value::as_str);
    let number = e.object.strip_prefix("change:");
    // A standard change's rule submits, approves and authorises it itself at once (seed 000
    // §6.8: pre-approved): nobody is waiting to decide.
    let by_rule = matches!(e.actor, Actor::System(_));
    match (e.action.as_str(), number) {
        ("change.submit" | "change.approve", Some(_)) if by_rule => Ok(Vec::new()),
        ("change.submit", Some(number)) => Ok(change_notice(
            store,
            number,
            event,
            EventKind::ApprovalNeeded,
            Some("approver"),
        )
        .await?),
        ("change.approve", Some(number)) if after_state == Some("approved") => Ok(change_notice(
            store,
            number,
            event,
            EventKind::ApprovalNeeded,
            Some("authoriser"),
        )
        .await?),
        ("change.rollout_halted", Some(number)) => {
            Ok(change_notice(store, number, event, EventKind::RolloutHalted, None).await?)
        }
        ("findings.sync", _) => {
            let Some(host) = e
                .object
                .strip_prefix("host:")
                .and_then(|h| Uuid::parse_str(h).ok())
            else {
                return Ok(Vec::new());
            };
            emergencies(store, host, e.at).await
        }
        _ => Ok(Vec::new()),
    }
}

/// A notice about change `number`, with what a person deciding needs to see.
async fn change_notice(
    store: &dyn Store,
    number: &str,
    event: &AuditEvent,
    kind: EventKind,
    role: Option<&'static str>,
) -> Result<Vec<Notice>, StoreError> {
    let Some(change) = store.get_change(number).await? else {
        return Ok(Vec::new());
    };
    let body = &change.body;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    let title = text(body.get("title"));
    let kind_name = text(body.pointer("/change/kind"));
    let requester = change.requester.clone();
    let patches: Vec<String> = body
        .get("patches")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let name = text(p.get("package"));
                    let version = text(p.get("version"));
                    if version.is_empty() {
                        name
                    } else {
                        format!("{name} {version}")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let hosts = body
        .pointer("/targets/hosts")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let groups: Vec<String> = body
        .pointer("/targets/groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut targets = Vec::new();
    if hosts > 0 {
        targets.push(format!("{hosts} named host(s)"));
    }
    if !groups.is_empty() {
        targets.push(format!("groups {}", groups.join(", ")));
    }
    let targets = if targets.is_empty() {
        "no targets".to_owned()
    } else {
        targets.join(" and ")
    };
    let shown: Vec<&str> = patches.iter().take(10).map(String::as_str).collect();
    let patch_line = if patches.is_empty() {
        "Patches: derived from the targeted hosts' open findings.".to_owned()
    } else if patches.len() > shown.len() {
        format!(
            "Patches: {} and {} more.",
            shown.join(", "),
            patches.len() - shown.len()
        )
    } else {
        format!("Patches: {}.", shown.join(", "))
    };
    let (dedup_key, subject, lead) = match (kind, role) {
        (EventKind::RolloutHalted, _) => {
            let why = body
                .get("halted")
                .and_then(Value::as_str)
                .or_else(|| {
                    body.pointer("/change/outcome_reason")
                        .and_then(Value::as_str)
                })
                .unwrap_or("a ring failed");
            (
                format!("change:{number}:halted:{}", event.seq),
                format!("Rollout halted: {number} {title}"),
                format!(
                    "The rollout of {number} \"{title}\" halted: {why}. No further ring starts; \
                     hosts that received the change are rolled back where the plan says so. \
                     The change is now {}.",
                    change.state
                ),
            )
        }
        (_, Some("authoriser")) => (
            format!("change:{number}:authorisation:{}", event.seq),
            format!("Authorisation needed: {number} {title}"),
            format!(
                "{number} \"{title}\" ({kind_name}), requested by {requester}, was approved and \
                 waits for an authoriser's decision."
            ),
        ),
        _ => (
            format!("change:{number}:approval:{}", event.seq),
            format!("Approval needed: {number} {title}"),
            format!(
                "{number} \"{title}\" ({kind_name}) was submitted by {requester} and waits for \
                 an approver's decision."
            ),
        ),
    };
    let summary = format!("{lead}\nTargets: {targets}.\n{patch_line}");
    Ok(vec![Notice {
        kind,
        dedup_key,
        occurred_at: event.entry.at,
        subject,
        summary,
        path: format!("/changes/{number}"),
        role,
        data: json!({
            "change": number,
            "title": title,
            "kind": kind_name,
            "state": change.state,
            "requester": requester,
            "patches": patches,
            "needs": role,
            "audit_seq": event.seq,
            "actor": event.entry.actor.to_string(),
        }),
    }])
}

/// The host's open Emergency findings that became Emergency (opened, or were reclassified) in
/// the sync at `at`.
async fn emergencies(
    store: &dyn Store,
    host: Uuid,
    at: Timestamp,
) -> Result<Vec<Notice>, StoreError> {
    let found = store
        .list_findings(&FindingFilter {
            host: Some(host),
            state: Some(FindingState::Open),
            class: Some(Class::Emergency),
            ..Default::default()
        })
        .await?;
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let Some(h) = store.get_host(host).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for f in found {
        // The classification it has now began at this sync: it is new as an Emergency.
        let history = store.finding_history(f.id).await?;
        let since = history.last().map_or(f.first_seen, |c| c.at);
        if since < at {
            continue;
        }
        out.push(finding_notice(&h, &f, EventKind::EmergencyFinding, at));
    }
    Ok(out)
}

fn finding_notice(host: &Host, f: &StoredFinding, kind: EventKind, at: Timestamp) -> Notice {
    let x = &f.finding;
    let name = if host.facts.hostname.is_empty() {
        host.id.to_string()
    } else {
        host.facts.hostname.clone()
    };
    let class = f
        .classification
        .class
        .map_or_else(|| "unclassified".to_owned(), |c| c.to_string());
    let due = f
        .classification
        .due_at
        .map_or_else(|| "none".to_owned(), |d| d.to_string());
    let fix = x
        .fixed
        .as_deref()
        .unwrap_or("no fixed version released yet");
    let (what, suffix) = match kind {
        EventKind::EmergencyFinding => ("New Emergency finding", "emergency".to_owned()),
        EventKind::FindingBreached => ("Finding past its due date", "breached".to_owned()),
        _ => ("Finding due soon", "due_soon".to_owned()),
    };
    let subject = format!("{what}: {} on {name}", x.vulnerability);
    let summary = format!(
        "{what}: {vuln} in {pkg} {installed} on host {name} (group {group}).\n\
         Class: {class}. Due: {due}. Fix: {fix}.\n\
         Patch it through a change before the due date, or request an exception.",
        vuln = x.vulnerability,
        pkg = x.package,
        installed = x.installed,
        group = host.group,
    );
    Notice {
        kind,
        dedup_key: format!("finding:{}:{suffix}", f.id),
        occurred_at: at,
        subject,
        summary,
        path: format!(
            "/findings?host={}&vulnerability={}",
            host.id,
            query_escape(&x.vulnerability)
        ),
        role: None,
        data: json!({
            "finding": f.id,
            "host": host.id,
            "hostname": name,
            "group": host.group,
            "vulnerability": x.vulnerability,
            "package": x.package,
            "installed": x.installed,
            "fixed": x.fixed,
            "class": f.classification.class,
            "due_at": f.classification.due_at,
            "policy": f.classification.policy,
            "rule": f.classification.rule,
        }),
    }
}

/// `s` safe in a query string (vulnerability ids are `CVE-…`, `GHSA-…`, `DSA-…`: this only
/// has to keep a stray character from breaking the link).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The dedup keys this server has already queued (or found queued) since it started: a breached
/// finding stays breached until it is patched, and every sweep finds it again. The store would
/// refuse it as a duplicate anyway; remembering the keys here saves the write per finding and
/// sweep. Bounded: past [`Seen::MAX`] keys it starts over (and the store's uniqueness still
/// holds).
#[derive(Debug, Default)]
pub struct Seen(HashSet<String>);

impl Seen {
    const MAX: usize = 1_000_000;

    fn retain_new(&self, notices: Vec<Notice>) -> Vec<Notice> {
        notices
            .into_iter()
            .filter(|n| !self.0.contains(&n.dedup_key))
            .collect()
    }

    fn remember(&mut self, notices: &[Notice]) {
        if self.0.len() + notices.len() > Self::MAX {
            self.0.clear();
        }
        self.0.extend(notices.iter().map(|n| n.dedup_key.clone()));
    }
}

/// One sweep for deadlines: open findings due within `due_soon_days` or past due (unless an
/// exception in force covers them), windows opening within `window_lead_minutes`, approved
/// exceptions ending within `exception_lead_days`. Returns what was queued.
pub async fn sweep(
    state: &AppState,
    settings: &Settings,
    metrics: Option<&Metrics>,
    seen: &mut Seen,
    now: Timestamp,
) -> Result<Enqueued, SourceError> {
    let store = state.store.as_ref();
    let c = &settings.config;
    let mut notices = Vec::new();

    // Findings.
    let exceptions = store
        .list_exceptions(&ExceptionFilter {
            in_force_at: Some(now),
            ..Default::default()
        })
        .await?;
    let soon = now
        .checked_add(SignedDuration::from_hours(24 * i64::from(c.due_soon_days)))
        .unwrap_or(Timestamp::MAX);
    let mut hosts: HashMap<Uuid, Option<Host>> = HashMap::new();
    let mut after_id = None;
    loop {
        let page = store
            .list_findings(&FindingFilter {
                state: Some(FindingState::Open),
                due_before: Some(soon),
                after_id,
                limit: Some(FINDINGS_PAGE),
                ..Default::default()
            })
            .await?;
        after_id = page.last().map(|f| f.id);
        for f in &page {
            let Some(due) = f.classification.due_at else {
                continue;
            };
            if exceptions
                .iter()
                .any(|e| e.covers_at(f.host, &f.finding, now))
            {
                continue;
            }
            let host = match hosts.get(&f.host) {
                Some(h) => h.clone(),
                None => {
                    let h = store.get_host(f.host).await?;
                    hosts.insert(f.host, h.clone());
                    h
                }
            };
            let Some(host) = host else { continue };
            let kind = if now > due {
                EventKind::FindingBreached
            } else {
                EventKind::FindingDueSoon
            };
            notices.push(finding_notice(&host, f, kind, now));
        }
        if page.len() < FINDINGS_PAGE as usize {
            break;
        }
    }

    // Windows.
    let calendar = crate::changes::load_calendar(state)
        .await
        .map_err(|e| SourceError::Calendar(e.to_string()))?;
    let lead_end = now
        .checked_add(SignedDuration::from_mins(i64::from(c.window_lead_minutes)))
        .unwrap_or(Timestamp::MAX);
    let mut starting = Vec::new();
    for (window, groups) in calendar.windows() {
        if let Some(span) = window.next_after(now)
            && span.start > now
            && span.start <= lead_end
        {
            starting.push((window.name.clone(), groups.clone(), span));
        }
    }
    if !starting.is_empty() {
        let scheduled = store
            .list_changes(&ChangeFilter {
                states: vec!["scheduled".into(), "tested".into()],
                ..Default::default()
            })
            .await?;
        for (name, groups, span) in starting {
            let changes: Vec<String> = scheduled
                .iter()
                .filter(|ch| {
                    ch.body
                        .get("window")
                        .and_then(|w| w.get(0))
                        .and_then(|s| serde_json::from_value::<Timestamp>(s.clone()).ok())
                        .is_some_and(|s| s >= span.start && s < span.end)
                })
                .map(|ch| ch.number.clone())
                .collect();
            let changes_line = if changes.is_empty() {
                "No scheduled change starts in it yet.".to_owned()
            } else {
                format!("Changes scheduled in it: {}.", changes.join(", "))
            };
            notices.push(Notice {
                kind: EventKind::WindowStarting,
                dedup_key: format!("window:{name}:{}", span.start),
                occurred_at: now,
                subject: format!("Maintenance window starting: {name} at {}", span.start),
                summary: format!(
                    "The maintenance window \"{name}\" for groups {} opens at {} and closes at \
                     {}.\n{changes_line}",
                    if groups.is_empty() {
                        "(all)".to_owned()
                    } else {
                        groups.join(", ")
                    },
                    span.start,
                    span.end
                ),
                path: "/calendar".into(),
                role: None,
                data: json!({
                    "window": name,
                    "groups": groups,
                    "start": span.start,
                    "end": span.end,
                    "changes": changes,
                }),
            });
        }
    }

    // Exceptions.
    let lead_end = now
        .checked_add(SignedDuration::from_hours(
            24 * i64::from(c.exception_lead_days),
        ))
        .unwrap_or(Timestamp::MAX);
    for e in &exceptions {
        let expires = e.exception.request.expires_at;
        if expires <= lead_end {
            notices.push(exception_notice(e, now));
        }
    }

    let notices = seen.retain_new(notices);
    let done = queue(store, settings, metrics, &notices, None, now).await?;
    seen.remember(&notices);
    Ok(done)
}

fn exception_notice(e: &StoredException, now: Timestamp) -> Notice {
    let r = &e.exception.request;
    let hosts = e.scope.hosts_named().len();
    let findings = e.scope.findings.len();
    Notice {
        kind: EventKind::ExceptionExpiring,
        dedup_key: format!("exception:{}:expiring", e.number),
        occurred_at: now,
        subject: format!("Exception expiring: {} on {}", e.number, r.expires_at),
        summary: format!(
            "Exception {} (requested by {}) ends at {}. It covers {findings} finding(s) on \
             {hosts} host(s). Patch them before then, or request a new exception.",
            e.number, r.requester, r.expires_at
        ),
        path: format!("/exceptions/{}", e.id),
        role: None,
        data: json!({
            "exception": e.number,
            "id": e.id,
            "requester": r.requester,
            "expires_at": r.expires_at,
            "hosts": e.scope.hosts_named(),
            "findings": findings,
        }),
    }
}
