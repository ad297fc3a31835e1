//! Change requests on the server: the document the store keeps for each (the form, the core
//! state machine's `Change`, the schedule, the rollout's rings), creating one from the API's
//! request (patches derived from findings when none are given), applying an operator's event
//! through `patchwarden_core::change::apply`, the calendar of windows and freezes, and the
//! API's view. The rollout engine that moves scheduled changes through their rings is
//! [`rollout`].
//!
//! **Who may do what** (the capacities the core's rules take): officers, security, providers
//! and admins request; approvers approve; authorisers authorise; officers, providers and admins
//! implement (schedule, record testing, close). The route declarations admit the roles; the
//! core then refuses, in words, what the person may not do to this change (their own, in this
//! state, in a freeze …).

pub(crate) mod rollout;
pub mod standard;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::changes::{
    AffectedApplication, CalendarEntryView, CalendarSpec, ChangeView, FreezeSpec, HostRollout,
    NewChangeRequest, Patch, RingState, RingView, RolloutPlan, ScheduleRequest, Targets,
    TemplateSpec, WindowSpec,
};
use patchwarden_api::v1::jobs::{JobKind, PackagePin, RecordedResult};
use patchwarden_api::v1::manifest::{
    HealthCheck, Manifest, ManifestAction, check_name, check_steps,
};
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::calendar::{Calendar, Freeze, Span, Template, Window};
use patchwarden_core::change::{
    Capacities, Change, ChangeActor, ChangeEvent, ChangeKind, ChangeState, apply,
};
use patchwarden_store::change::{CalendarKind, ChangeUpdate, NewChange, StoredChange};
use patchwarden_store::{
    FindingFilter, FindingState, Host, HostFilter, HostState, Job, JobFilter, Role,
};
use patchwarden_version::Scheme;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::{Caller, Scope};
use crate::error::ApiError;
use crate::routes::jobs::wire_state as wire_job_state;
use crate::state::AppState;

/// The longest title; other texts follow the core's limit.
const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 4096;
/// The most hosts and groups one change names, and patches it carries.
const MAX_TARGETS: usize = 10_000;
const MAX_PATCHES: usize = patchwarden_api::v1::manifest::MAX_PACKAGES;
/// How long an emergency manifest (no window) stays valid: the Emergency deadline.
const EMERGENCY_VALIDITY: SignedDuration = SignedDuration::from_hours(8);
/// How long a rollback manifest stays valid: a rollback runs at once, window or not (the
/// change's rollback plan authorised it with the change).
const ROLLBACK_VALIDITY: SignedDuration = SignedDuration::from_hours(4);

/// What the store keeps for a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChangeDoc {
    /// The part the state machine judges.
    pub change: Change,
    pub title: String,
    pub risk: patchwarden_api::v1::changes::Risk,
    pub priority: String,
    pub targets: Targets,
    pub patches: Vec<Patch>,
    pub restart_order: Vec<String>,
    pub health_checks: Vec<HealthCheck>,
    pub reboot_allowed: bool,
    pub rollout: RolloutPlan,
    /// The window it was scheduled into.
    #[serde(default)]
    pub window: Option<(Timestamp, Timestamp)>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Fixed when the rollout starts: the hosts of each ring then.
    #[serde(default)]
    pub rings: Vec<Ring>,
    #[serde(default)]
    pub halted: Option<String>,
    /// Gated rings released by an operator.
    #[serde(default)]
    pub promoted: Vec<(String, patchwarden_core::change::Signed)>,
    /// Set at scheduling: from when it is announced, and the applications it affects.
    #[serde(default)]
    pub announce_at: Option<Timestamp>,
    #[serde(default)]
    pub affected: Vec<patchwarden_api::v1::changes::AffectedApplication>,
    /// The schedule template it follows: name, anchor, and the test ring's soak.
    #[serde(default)]
    pub template: Option<(String, Timestamp, SignedDuration)>,
    /// Who called the change back by hand (`roll back`), and when: the rollout engine then
    /// rolls its hosts back, and counts it rolled back even when no host needed it.
    #[serde(default)]
    pub rollback_requested: Option<patchwarden_core::change::Signed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ring {
    pub name: String,
    pub test: bool,
    pub state: RingState,
    pub started_at: Option<Timestamp>,
    pub verified_at: Option<Timestamp>,
    pub hosts: Vec<RingHost>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RingHost {
    pub host: Uuid,
    pub hostname: String,
    pub group: String,
    /// Its failure domain (the value of the plan's domain label), if any.
    #[serde(default)]
    pub domain: Option<String>,
    /// What the host gets: the patches that apply to its installed packages.
    pub packages: Vec<PackagePin>,
    /// The versions installed when the ring started: what a rollback returns to.
    pub previous: Vec<PackagePin>,
    pub job: Option<Uuid>,
    pub rollback_job: Option<Uuid>,
    pub nothing_to_do: bool,
}

impl ChangeDoc {
    pub(crate) fn parse(stored: &StoredChange) -> Result<ChangeDoc, ApiError> {
        serde_json::from_value(stored.body.clone()).map_err(|e| {
            ApiError::Internal(format!(
                "stored change {} does not decode: {e}",
                stored.number
            ))
        })
    }

    pub(crate) fn to_value(&self) -> Result<serde_json::Value, ApiError> {
        serde_json::to_value(self).map_err(|e| ApiError::Internal(e.to_string()))
    }

    fn emergency(&self) -> bool {
        self.change.kind == ChangeKind::Emergency
    }
}

/// What the caller's roles let them do to changes.
pub(crate) fn capacities(caller: &Caller) -> Capacities {
    let any = |roles: &[Role]| roles.iter().any(|r| caller.has(*r));
    Capacities {
        request: any(&[Role::Admin, Role::Officer, Role::Security, Role::Provider]),
        approve: any(&[Role::Approver]),
        authorise: any(&[Role::Authoriser]),
        implement: any(&[Role::Admin, Role::Officer, Role::Provider]),
    }
}

fn text(field: &str, s: &str, max: usize, required: bool) -> Result<(), ApiError> {
    if required && s.trim().is_empty() {
        return Err(ApiError::MalformedBody(format!("the {field} is empty")));
    }
    if s.len() > max {
        return Err(ApiError::MalformedBody(format!(
            "the {field} is longer than {max} bytes"
        )));
    }
    Ok(())
}

/// A package or version name a manifest will accept (`manifest::check_name`).
fn plain(field: &str, s: &str) -> Result<(), ApiError> {
    check_name(field, s).map_err(|e| ApiError::MalformedBody(e.0))
}

/// The hosts a change targets that the caller may see, active ones only, by id.
pub(crate) async fn target_hosts(
    state: &AppState,
    targets: &Targets,
    scope: &Scope,
) -> Result<Vec<Host>, ApiError> {
    let mut found: BTreeMap<Uuid, Host> = BTreeMap::new();
    for id in &targets.hosts {
        match state.store.get_host(*id).await? {
            Some(h) if scope.admits_group(&h.group) => {
                found.insert(h.id, h);
            }
            _ => {
                return Err(ApiError::MalformedBody(format!("host {id} does not exist")));
            }
        }
    }
    for group in &targets.groups {
        if !scope.admits_group(group) {
            return Err(ApiError::Forbidden(format!(
                "group {group} is outside your scope"
            )));
        }
        let mut after = None;
        loop {
            let page = state
                .store
                .list_hosts(&HostFilter {
                    group: Some(group.clone()),
                    after,
                    limit: Some(1000),
                    ..HostFilter::default()
                })
                .await?;
            after = page.last().map(|h| h.id);
            let done = page.len() < 1000;
            for h in page {
                found.insert(h.id, h);
            }
            if done {
                break;
            }
        }
    }
    Ok(found
        .into_values()
        .filter(|h| h.state == HostState::Active)
        .collect())
}

/// Whether `a` is a lower version than `b` in `ecosystem`'s ordering (`None` when either does
/// not parse or the ecosystem is unknown).
pub(crate) fn lower(ecosystem: Option<&str>, a: &str, b: &str) -> Option<bool> {
    let scheme = Scheme::from_osv_ecosystem(ecosystem?).ok()?;
    scheme.compare(a, b).ok().map(|o| o.is_lt())
}

/// Patches from the open findings with a fixed version of `hosts` (only `vulnerabilities`'
/// when any are named) that the baseline admits, and the hosts' available updates of the
/// baseline's kinds: per package and ecosystem, the highest version any host needs.
async fn derive_patches(
    state: &AppState,
    hosts: &[Host],
    vulnerabilities: &[String],
    baseline: &patchwarden_api::v1::changes::Baseline,
    now: Timestamp,
) -> Result<Vec<Patch>, ApiError> {
    let wanted: BTreeSet<&str> = vulnerabilities.iter().map(String::as_str).collect();
    let min_class = baseline
        .min_criticality
        .map(crate::routes::fleet::class)
        .unwrap_or(patchwarden_core::policy::Class::Low);
    let released_before = baseline.min_age_days.map(|d| {
        now.checked_sub(SignedDuration::from_hours(24 * i64::from(d)))
            .unwrap_or(now)
    });
    let mut best: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut offer = |package: &str, ecosystem: &str, version: String| {
        let key = (package.to_owned(), ecosystem.to_owned());
        match best.get(&key) {
            Some(v) if lower(Some(ecosystem), &version, v) != Some(false) => {}
            _ => {
                best.insert(key, version);
            }
        }
    };
    for host in hosts {
        let findings = state
            .store
            .list_findings(&FindingFilter {
                host: Some(host.id),
                state: Some(FindingState::Open),
                ..FindingFilter::default()
            })
            .await?;
        for stored in findings {
            if stored.classification.class.is_none_or(|c| c < min_class) {
                continue;
            }
            let f = stored.finding;
            let Some(fixed) = f.fixed.clone() else {
                continue;
            };
            if let Some(before) = released_before
                && f.available_at.is_none_or(|at| at > before)
            {
                continue;
            }
            if !wanted.is_empty()
                && !wanted.contains(f.vulnerability.as_str())
                && !f.aliases.iter().any(|a| wanted.contains(a.as_str()))
            {
                continue;
            }
            offer(&f.package, &f.ecosystem, fixed);
        }
        if baseline.update_kinds.is_empty() {
            continue;
        }
        let (Some(inventory), Some(ecosystem)) = (
            state.store.get_inventory(host.id).await?,
            host.ecosystem.as_deref(),
        ) else {
            continue;
        };
        for u in &inventory.inventory.updates {
            if baseline.update_kinds.contains(&u.kind) {
                offer(&u.name, ecosystem, u.candidate.clone());
            }
        }
    }
    Ok(best
        .into_iter()
        .map(|((package, ecosystem), version)| Patch {
            package,
            version,
            ecosystem: Some(ecosystem),
        })
        .collect())
}

/// Creates a draft from the API's request.
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    request: NewChangeRequest,
    now: Timestamp,
) -> Result<StoredChange, ApiError> {
    if !capacities(caller).request {
        return Err(ApiError::Forbidden(
            "your roles do not request changes".into(),
        ));
    }
    create_as(
        state,
        &caller.user.username,
        caller.actor(),
        &caller.scope(),
        request,
        now,
    )
    .await
}

/// Creates a draft requested by `requester` (an operator, or `rule:NAME`).
pub(crate) async fn create_as(
    state: &AppState,
    requester: &str,
    audit_actor: patchwarden_core::audit::Actor,
    scope: &Scope,
    request: NewChangeRequest,
    now: Timestamp,
) -> Result<StoredChange, ApiError> {
    let doc = draft_doc(state, requester, scope, request, now).await?;
    let body = doc.to_value()?;
    let audit = AuditEntry::new(now, audit_actor, "change.create", "change:new").after(
        serde_json::json!({"kind": doc.change.kind.as_str(), "title": doc.title,
                            "patches": doc.patches.len()}),
    );
    Ok(state
        .store
        .create_change(
            NewChange {
                id: Uuid::new_v4(),
                year: now.to_zoned(TimeZone::UTC).year(),
                kind: doc.change.kind.as_str().into(),
                state: doc.change.state.as_str().into(),
                requester: requester.to_owned(),
                body,
            },
            now,
            audit,
        )
        .await?)
}

/// Replaces a draft's form: its requester edits it before submitting (the patches, the
/// targets, the plan …); its kind stays (a change of kind is a new change).
pub(crate) async fn edit(
    state: &AppState,
    caller: &Caller,
    number: &str,
    request: NewChangeRequest,
    now: Timestamp,
) -> Result<StoredChange, ApiError> {
    let (stored, doc) = visible(state, caller, number).await?;
    if doc.change.state != ChangeState::Draft {
        return Err(ApiError::Conflict(format!(
            "{} is {}: only a draft is edited (cancel it and request a new one)",
            stored.number, doc.change.state
        )));
    }
    if doc.change.requester != caller.user.username {
        return Err(ApiError::Conflict(format!(
            "only the requester ({}) edits the draft",
            doc.change.requester
        )));
    }
    if request.kind != doc.change.kind {
        return Err(ApiError::Conflict(format!(
            "{} is a {} change: another kind is a new change",
            stored.number,
            doc.change.kind.as_str()
        )));
    }
    let next = draft_doc(state, &caller.user.username, &caller.scope(), request, now).await?;
    let audit = AuditEntry::new(
        now,
        caller.actor(),
        "change.edit",
        format!("change:{}", stored.number),
    )
    .before(serde_json::json!({"title": doc.title, "patches": doc.patches, "targets": doc.targets}))
    .after(
        serde_json::json!({"title": next.title, "patches": next.patches, "targets": next.targets}),
    );
    Ok(state
        .store
        .update_change(
            ChangeUpdate {
                id: stored.id,
                revision: stored.revision,
                state: stored.state.clone(),
                body: next.to_value()?,
                jobs: Vec::new(),
            },
            now,
            audit,
        )
        .await?)
}

/// A draft's document from the API's request, checked; patches derived when none are given.
async fn draft_doc(
    state: &AppState,
    requester: &str,
    scope: &Scope,
    request: NewChangeRequest,
    now: Timestamp,
) -> Result<ChangeDoc, ApiError> {
    text("title", &request.title, MAX_TITLE, true)?;
    text("justification", &request.justification, MAX_TEXT, false)?;
    text("rollback plan", &request.rollback_plan, MAX_TEXT, false)?;
    text("priority", &request.priority, MAX_TITLE, false)?;
    if request.targets.hosts.is_empty() && request.targets.groups.is_empty() {
        return Err(ApiError::MalformedBody(
            "the change targets no host and no group".into(),
        ));
    }
    if request.targets.hosts.len() + request.targets.groups.len() > MAX_TARGETS
        || request.patches.len() > MAX_PATCHES
    {
        return Err(ApiError::MalformedBody(
            "too many targets or patches".into(),
        ));
    }
    text("test ring", &request.rollout.test_ring, 128, true)?;
    if let Some(waves) = &request.rollout.waves {
        waves.check().map_err(ApiError::MalformedBody)?;
    }
    let hosts = target_hosts(state, &request.targets, scope).await?;
    let patches = if request.patches.is_empty() {
        derive_patches(
            state,
            &hosts,
            &request.from_findings,
            &request.baseline,
            now,
        )
        .await?
    } else {
        request.patches.clone()
    };
    if patches.is_empty() {
        return Err(ApiError::MalformedBody(
            "the change has no patches: none were given and the targeted hosts have no open \
             finding with a fixed version"
                .into(),
        ));
    }
    for p in &patches {
        plain("package", &p.package)?;
        plain("version", &p.version)?;
    }
    // The restarts and health checks as an agent will check them, before anyone signs them.
    check_steps(&request.restart_order, &request.health_checks)
        .map_err(|e| ApiError::MalformedBody(e.0))?;

    let mut change = Change::draft(request.kind, requester, request.testing);
    change.justification = request.justification;
    change.rollback_plan = request.rollback_plan;
    change.hotfix = request.hotfix;
    let doc = ChangeDoc {
        change,
        title: request.title,
        risk: request.risk,
        priority: request.priority,
        targets: request.targets,
        patches,
        restart_order: request.restart_order,
        health_checks: request.health_checks,
        reboot_allowed: request.reboot_allowed,
        rollout: request.rollout,
        window: None,
        warnings: Vec::new(),
        rings: Vec::new(),
        halted: None,
        promoted: Vec::new(),
        announce_at: None,
        affected: Vec::new(),
        template: None,
        rollback_requested: None,
    };
    Ok(doc)
}

/// A change the caller may see: a provider only one whose hosts are all in its groups.
pub(crate) async fn visible(
    state: &AppState,
    caller: &Caller,
    number: &str,
) -> Result<(StoredChange, ChangeDoc), ApiError> {
    let stored = state
        .store
        .get_change(number)
        .await?
        .ok_or(ApiError::NotFound)?;
    let doc = ChangeDoc::parse(&stored)?;
    if let Scope::Groups(_) = caller.scope()
        && target_hosts(state, &doc.targets, &caller.scope())
            .await
            .is_err()
    {
        return Err(ApiError::NotFound);
    }
    Ok((stored, doc))
}

/// A calendar entry's name: letters, digits, '-', '_' and '.', at most 128.
pub(crate) fn check_entry_name(n: &str) -> Result<(), ApiError> {
    if n.is_empty()
        || n.len() > 128
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ApiError::InvalidParameter(format!(
            "calendar entry name {n:?}: letters, digits, '-', '_' and '.', at most 128"
        )));
    }
    Ok(())
}

/// Every calendar entry (windows, freezes, templates) with its next openings from `now`.
pub(crate) async fn calendar_entries(
    state: &AppState,
    now: Timestamp,
) -> Result<Vec<patchwarden_api::v1::changes::CalendarEntryView>, ApiError> {
    let mut out = Vec::new();
    for e in state.store.calendar_entries().await? {
        let spec: CalendarSpec = serde_json::from_value(e.body.clone()).map_err(|err| {
            ApiError::Internal(format!("calendar entry {} does not decode: {err}", e.name))
        })?;
        out.push(calendar_view(&e.name, spec, e.updated_at, now));
    }
    Ok(out)
}

/// Creates or replaces calendar entry `name` (checked by [`check_entry_name`]) after checking
/// its rule, zone or span; audited, and the rollout engine woken.
pub(crate) async fn put_calendar_entry(
    state: &AppState,
    caller: &Caller,
    name: &str,
    spec: CalendarSpec,
    now: Timestamp,
) -> Result<patchwarden_api::v1::changes::CalendarEntryView, ApiError> {
    match &spec {
        CalendarSpec::Window(w) => {
            for g in &w.groups {
                if g.is_empty() || g.len() > 128 {
                    return Err(ApiError::MalformedBody(format!("group {g:?}")));
                }
            }
            window(name, w).map_err(ApiError::MalformedBody)?;
        }
        CalendarSpec::Template(t) => {
            template(name, t).map_err(ApiError::MalformedBody)?;
        }
        CalendarSpec::Freeze(f) => {
            freeze(name, f).map_err(ApiError::MalformedBody)?;
            if f.reason.len() > 1024 {
                return Err(ApiError::MalformedBody("the reason is too long".into()));
            }
        }
    }
    let body = serde_json::to_value(&spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    let audit = AuditEntry::new(
        now,
        caller.actor(),
        "calendar.put",
        format!("calendar:{name}"),
    )
    .after(body.clone());
    let entry = state
        .store
        .put_calendar_entry(name, calendar_kind(&spec), body, now, audit)
        .await?;
    state.rollout_wake.notify_one();
    Ok(calendar_view(&entry.name, spec, entry.updated_at, now))
}

/// Removes calendar entry `name`; "not found" when there is none.
pub(crate) async fn delete_calendar_entry(
    state: &AppState,
    caller: &Caller,
    name: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    let audit = AuditEntry::new(
        now,
        caller.actor(),
        "calendar.delete",
        format!("calendar:{name}"),
    );
    if state.store.delete_calendar_entry(name, now, audit).await? {
        state.rollout_wake.notify_one();
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// The changes `filter` selects that the caller may see (a provider only those whose hosts
/// are all in its groups), newest first, each with its parsed document.
pub(crate) async fn list_visible(
    state: &AppState,
    caller: &Caller,
    filter: &patchwarden_store::change::ChangeFilter,
) -> Result<Vec<(StoredChange, ChangeDoc)>, ApiError> {
    let stored = state.store.list_changes(filter).await?;
    let mut out = Vec::with_capacity(stored.len());
    for s in stored {
        let doc = ChangeDoc::parse(&s)?;
        if let Scope::Groups(_) = caller.scope()
            && target_hosts(state, &doc.targets, &caller.scope())
                .await
                .is_err()
        {
            continue;
        }
        out.push((s, doc));
    }
    Ok(out)
}

/// The operator events the core's rules let the caller apply to `change` now — what a page
/// asks before it shows a button. The roles a route is declared for are checked by the page
/// besides (`Chrome::can`); this asks `change::apply` itself, so the requester never sees
/// Approve on their own change. Events that need a reason are tried with one.
pub(crate) fn allowed_events(caller: &Caller, change: &Change, now: Timestamp) -> Vec<ChangeEvent> {
    let actor = ChangeActor::person(&caller.user.username, capacities(caller));
    // The operator's events do not depend on the calendar (only testing and deploying do,
    // which the rollout engine applies).
    let moment = patchwarden_core::change::Moment {
        now,
        in_window: true,
        in_freeze: false,
    };
    let reason = || "a reason".to_owned();
    [
        ChangeEvent::Submit,
        ChangeEvent::Approve,
        ChangeEvent::Authorise,
        ChangeEvent::Reject { reason: reason() },
        ChangeEvent::Schedule,
        ChangeEvent::RecordTesting,
        ChangeEvent::Close,
        ChangeEvent::Cancel { reason: reason() },
        ChangeEvent::RollBack { reason: reason() },
    ]
    .into_iter()
    .filter(|e| apply(change, e, &actor, moment).is_ok())
    .collect()
}

/// Applies an operator's event (and, for `Schedule`, finds the window), then stores the
/// change at the revision read.
pub(crate) async fn act(
    state: &AppState,
    caller: &Caller,
    number: &str,
    event: ChangeEvent,
    schedule: ScheduleRequest,
    now: Timestamp,
) -> Result<StoredChange, ApiError> {
    let (stored, doc) = visible(state, caller, number).await?;
    let actor = ChangeActor::person(&caller.user.username, capacities(caller));
    apply_event(
        state,
        stored,
        doc,
        &actor,
        caller.actor(),
        event,
        schedule,
        now,
    )
    .await
}

/// Applies `event` by `actor` to a change read at `stored`; stores it with its audit entry.
#[allow(clippy::too_many_arguments)] // one call per event source; a struct would only rename them
pub(crate) async fn apply_event(
    state: &AppState,
    stored: StoredChange,
    mut doc: ChangeDoc,
    actor: &ChangeActor,
    audit_actor: patchwarden_core::audit::Actor,
    event: ChangeEvent,
    schedule: ScheduleRequest,
    now: Timestamp,
) -> Result<StoredChange, ApiError> {
    let hosts = target_hosts(state, &doc.targets, &Scope::All).await?;
    let groups: BTreeSet<String> = hosts.iter().map(|h| h.group.clone()).collect();
    let calendar = load_calendar(state).await?;
    let union = calendar.for_groups(&groups);
    let next = apply(&doc.change, &event, actor, union.moment(now))
        .map_err(|r| ApiError::Conflict(r.to_string()))?;
    let before = doc.change.state;
    doc.change = next;
    if matches!(event, ChangeEvent::Schedule) {
        let mut from = schedule.not_before.map_or(now, |t| t.max(now));
        doc.template = None;
        if let Some(name) = &schedule.template {
            let template = calendar.templates.get(name).ok_or_else(|| {
                ApiError::Conflict(format!("no schedule template is named {name:?}"))
            })?;
            let plan = template.plan(from).ok_or_else(|| {
                ApiError::Conflict(format!("template {name:?} has no anchor after {from}"))
            })?;
            from = plan.test_not_before;
            doc.template = Some((name.clone(), plan.anchor, plan.broad_after_test));
        }
        let Some(span) = union.next_opportunity(from, doc.emergency()) else {
            return Err(ApiError::Conflict(format!(
                "no maintenance window outside a freeze opens for the hosts of {} (groups: {})",
                stored.number,
                groups.into_iter().collect::<Vec<_>>().join(", ")
            )));
        };
        let end = if doc.emergency() {
            now.checked_add(EMERGENCY_VALIDITY)
                .unwrap_or(Timestamp::MAX)
        } else {
            span.end
        };
        doc.window = Some((span.start, end));
        doc.warnings = due_warnings(state, &hosts, span.start, now).await?;
        doc.announce_at = Some(if doc.emergency() {
            now
        } else {
            let ahead = SignedDuration::from_hours(24 * i64::from(state.changes.announce_days));
            span.start.checked_sub(ahead).unwrap_or(now).max(now)
        });
        doc.affected = affected_applications(&hosts);
    }
    if let ChangeEvent::RollBack { reason } = &event {
        // The rollout stops where it is: no later ring starts, and the engine gives every
        // host that was given the change its rollback job (`rollout::roll_back`).
        doc.halted = Some(format!(
            "rolled back by {}: {}",
            actor.name(),
            reason.trim()
        ));
        doc.rollback_requested = Some(patchwarden_core::change::Signed {
            by: actor.name(),
            at: now,
        });
        for ring in &mut doc.rings {
            ring.state = match ring.state {
                RingState::Waiting => RingState::Skipped,
                RingState::Running => RingState::Failed,
                other => other,
            };
        }
    }
    let audit = AuditEntry::new(
        now,
        audit_actor,
        &format!("change.{}", event.name().replace(' ', "_")),
        format!("change:{}", stored.number),
    )
    .before(serde_json::json!({"state": before.as_str()}))
    .after(serde_json::json!({"state": doc.change.state.as_str(), "window": doc.window}));
    let updated = state
        .store
        .update_change(
            ChangeUpdate {
                id: stored.id,
                revision: stored.revision,
                state: doc.change.state.as_str().into(),
                body: doc.to_value()?,
                jobs: Vec::new(),
            },
            now,
            audit,
        )
        .await?;
    state.rollout_wake.notify_one();
    Ok(updated)
}

/// Releases the manual gate of ring `ring`: an implementer looked at the ring's hosts and lets
/// the rollout count it as verified (and go on to the next ring).
pub(crate) async fn promote(
    state: &AppState,
    caller: &Caller,
    number: &str,
    ring: &str,
    now: Timestamp,
) -> Result<StoredChange, ApiError> {
    let (stored, mut doc) = visible(state, caller, number).await?;
    if !capacities(caller).implement {
        return Err(ApiError::Forbidden(
            "your roles do not implement changes".into(),
        ));
    }
    if !doc.rollout.gates.iter().any(|g| g == ring) {
        return Err(ApiError::Conflict(format!(
            "ring {ring:?} has no manual gate in {}'s rollout plan",
            stored.number
        )));
    }
    if !matches!(
        doc.change.state,
        ChangeState::Scheduled
            | ChangeState::Testing
            | ChangeState::Tested
            | ChangeState::Deploying
    ) {
        return Err(ApiError::Conflict(format!(
            "{} is {}: there is no rollout to promote",
            stored.number, doc.change.state
        )));
    }
    if doc.promoted.iter().any(|(r, _)| r == ring) {
        return Err(ApiError::Conflict(format!(
            "ring {ring:?} is already promoted"
        )));
    }
    doc.promoted.push((
        ring.to_owned(),
        patchwarden_core::change::Signed {
            by: caller.user.username.clone(),
            at: now,
        },
    ));
    let audit = AuditEntry::new(
        now,
        caller.actor(),
        "change.promote",
        format!("change:{}", stored.number),
    )
    .after(serde_json::json!({"ring": ring}));
    let updated = state
        .store
        .update_change(
            ChangeUpdate {
                id: stored.id,
                revision: stored.revision,
                state: stored.state.clone(),
                body: doc.to_value()?,
                jobs: Vec::new(),
            },
            now,
            audit,
        )
        .await?;
    state.rollout_wake.notify_one();
    Ok(updated)
}

/// The applications `hosts` serve, from their `application` and `impact` labels.
fn affected_applications(hosts: &[Host]) -> Vec<AffectedApplication> {
    let mut apps: BTreeMap<String, (Option<String>, Vec<String>)> = BTreeMap::new();
    for h in hosts {
        if let Some(app) = h.labels.get("application") {
            let entry = apps.entry(app.clone()).or_default();
            if entry.0.is_none() {
                entry.0 = h.labels.get("impact").cloned();
            }
            entry.1.push(h.facts.hostname.clone());
        }
    }
    let mut out = Vec::with_capacity(apps.len());
    for (application, (impact, mut hosts)) in apps {
        hosts.sort();
        out.push(AffectedApplication {
            application,
            impact,
            hosts,
        });
    }
    out
}

/// Warnings for open findings of `hosts` due before the change can start.
async fn due_warnings(
    state: &AppState,
    hosts: &[Host],
    start: Timestamp,
    _now: Timestamp,
) -> Result<Vec<String>, ApiError> {
    let mut late = 0usize;
    let mut first: Option<(Timestamp, String)> = None;
    for host in hosts {
        let findings = state
            .store
            .list_findings(&FindingFilter {
                host: Some(host.id),
                state: Some(FindingState::Open),
                due_before: Some(start),
                ..FindingFilter::default()
            })
            .await?;
        for f in findings {
            late += 1;
            if let Some(due) = f.classification.due_at
                && first.as_ref().is_none_or(|(d, _)| due < *d)
            {
                first = Some((
                    due,
                    format!("{} on {}", f.finding.vulnerability, host.facts.hostname),
                ));
            }
        }
    }
    Ok(match first {
        Some((due, what)) => vec![format!(
            "{late} open finding(s) of these hosts fall due before the window opens at {start} \
             (the first: {what}, due {due}); consider an emergency change or an exception"
        )],
        None => Vec::new(),
    })
}

/// The calendar: windows with the groups they apply to, and freezes.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadedCalendar {
    windows: Vec<(Window, Vec<String>)>,
    freezes: Vec<Freeze>,
    templates: BTreeMap<String, Template>,
}

impl LoadedCalendar {
    /// Every stored window with the groups it applies to (the notifier warns before each opens).
    pub(crate) fn windows(&self) -> &[(Window, Vec<String>)] {
        &self.windows
    }

    /// The calendar of hosts in `groups`: the windows that apply to any of them, every freeze.
    pub(crate) fn for_groups(&self, groups: &BTreeSet<String>) -> Calendar {
        Calendar {
            windows: self
                .windows
                .iter()
                .filter(|(_, g)| g.is_empty() || g.iter().any(|g| groups.contains(g)))
                .map(|(w, _)| w.clone())
                .collect(),
            freezes: self.freezes.clone(),
        }
    }

    pub(crate) fn for_group(&self, group: &str) -> Calendar {
        self.for_groups(&BTreeSet::from([group.to_owned()]))
    }
}

fn time_zone(name: &str) -> Result<TimeZone, String> {
    if name.eq_ignore_ascii_case("UTC") {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name)
        .or_else(|_| TimeZone::posix(name))
        .map_err(|e| format!("time zone {name:?}: {e}"))
}

/// A window spec as the core's window.
pub(crate) fn window(name: &str, w: &WindowSpec) -> Result<Window, String> {
    let start: DateTime = w
        .start
        .parse()
        .map_err(|e| format!("start {:?} is not a local date and time: {e}", w.start))?;
    Window::new(
        name,
        &w.rrule,
        start,
        time_zone(&w.time_zone)?,
        SignedDuration::from_mins(i64::from(w.duration_minutes)),
    )
    .map_err(|e| e.to_string())
}

pub(crate) fn freeze(name: &str, f: &FreezeSpec) -> Result<Freeze, String> {
    Freeze::new(name, f.start, f.end).map_err(|e| e.to_string())
}

/// A template spec as the core's template.
pub(crate) fn template(name: &str, t: &TemplateSpec) -> Result<Template, String> {
    let anchor = window(
        name,
        &WindowSpec {
            rrule: t.rrule.clone(),
            start: t.start.clone(),
            time_zone: t.time_zone.clone(),
            duration_minutes: 1,
            groups: Vec::new(),
        },
    )?;
    Template::new(
        name,
        anchor,
        SignedDuration::from_hours(i64::from(t.test_after_hours)),
        SignedDuration::from_hours(24 * i64::from(t.broad_after_test_days)),
    )
    .map_err(|e| e.to_string())
}

pub(crate) async fn load_calendar(state: &AppState) -> Result<LoadedCalendar, ApiError> {
    let mut out = LoadedCalendar::default();
    for entry in state.store.calendar_entries().await? {
        let spec: CalendarSpec = serde_json::from_value(entry.body.clone()).map_err(|e| {
            ApiError::Internal(format!(
                "calendar entry {} does not decode: {e}",
                entry.name
            ))
        })?;
        match spec {
            CalendarSpec::Window(w) => match window(&entry.name, &w) {
                Ok(win) => out.windows.push((win, w.groups)),
                Err(e) => {
                    tracing::warn!(entry = %entry.name, error = %e, "a stored window is invalid")
                }
            },
            CalendarSpec::Template(t) => match template(&entry.name, &t) {
                Ok(tp) => {
                    out.templates.insert(entry.name.clone(), tp);
                }
                Err(e) => {
                    tracing::warn!(entry = %entry.name, error = %e, "a stored template is invalid")
                }
            },
            CalendarSpec::Freeze(f) => match freeze(&entry.name, &f) {
                Ok(fr) => out.freezes.push(fr),
                Err(e) => {
                    tracing::warn!(entry = %entry.name, error = %e, "a stored freeze is invalid")
                }
            },
        }
    }
    Ok(out)
}

/// A calendar entry as the API shows it, with its next openings.
pub(crate) fn calendar_view(
    name: &str,
    spec: CalendarSpec,
    updated_at: Timestamp,
    now: Timestamp,
) -> CalendarEntryView {
    let next = match &spec {
        CalendarSpec::Window(w) => match window(name, w) {
            Ok(win) => {
                let mut out = Vec::new();
                let mut t = now;
                if let Some(open) = win.open_at(now) {
                    out.push((open.start, open.end));
                    t = open.end;
                }
                while out.len() < 5 {
                    let Some(s) = win.next_after(t) else { break };
                    out.push((s.start, s.end));
                    t = s.end;
                }
                out
            }
            Err(_) => Vec::new(),
        },
        CalendarSpec::Freeze(f) => vec![(f.start, f.end)],
        // The next anchors and, for each, when its test ring may start.
        CalendarSpec::Template(t) => match template(name, t) {
            Ok(tp) => {
                let mut out = Vec::new();
                let mut from = now;
                while out.len() < 3 {
                    let Some(p) = tp.plan(from) else { break };
                    out.push((p.anchor, p.test_not_before));
                    from = p
                        .test_not_before
                        .checked_add(SignedDuration::from_secs(1))
                        .unwrap_or(Timestamp::MAX);
                }
                out
            }
            Err(_) => Vec::new(),
        },
    };
    CalendarEntryView {
        name: name.to_owned(),
        spec,
        next,
        updated_at,
    }
}

pub(crate) fn calendar_kind(spec: &CalendarSpec) -> CalendarKind {
    match spec {
        CalendarSpec::Window(_) => CalendarKind::Window,
        CalendarSpec::Freeze(_) => CalendarKind::Freeze,
        CalendarSpec::Template(_) => CalendarKind::Template,
    }
}

/// The packages `patches` bring to `host` given its inventory: (targets, their versions now).
pub(crate) fn host_packages(
    patches: &[Patch],
    host: &Host,
    inventory: Option<&patchwarden_core::inventory::Inventory>,
) -> (Vec<PackagePin>, Vec<PackagePin>) {
    let mut targets = BTreeMap::new();
    let mut previous = BTreeMap::new();
    let Some(inventory) = inventory else {
        return (Vec::new(), Vec::new());
    };
    let ecosystem = host.ecosystem.as_deref();
    for p in &inventory.packages {
        if p.status != patchwarden_core::inventory::PackageStatus::Installed {
            continue;
        }
        for patch in patches {
            if patch.package != p.name {
                continue;
            }
            if let (Some(want), Some(have)) = (patch.ecosystem.as_deref(), ecosystem)
                && want != have
            {
                continue;
            }
            if lower(
                ecosystem.or(patch.ecosystem.as_deref()),
                &p.version,
                &patch.version,
            ) != Some(true)
            {
                continue;
            }
            targets.insert(
                p.name.clone(),
                PackagePin {
                    name: p.name.clone(),
                    version: patch.version.clone(),
                    arch: None,
                },
            );
            previous.insert(
                p.name.clone(),
                PackagePin {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    arch: None,
                },
            );
        }
    }
    (
        targets.into_values().collect(),
        previous.into_values().collect(),
    )
}

/// The manifest of a job of `number` for `host`.
pub(crate) fn manifest(
    number: &str,
    doc: &ChangeDoc,
    host: Uuid,
    action: ManifestAction,
    packages: Vec<PackagePin>,
    window: Option<Span>,
    now: Timestamp,
) -> Manifest {
    use patchwarden_api::v1::manifest::{Approval, ApprovalRole, ManifestKind, ManifestWindow};
    let kind = match doc.change.kind {
        ChangeKind::Standard => ManifestKind::Standard,
        ChangeKind::Normal => ManifestKind::Normal,
        ChangeKind::Emergency => ManifestKind::Emergency,
    };
    let (window, expires_at) = match (action, window) {
        (ManifestAction::Rollback, _) => {
            let end = now.checked_add(ROLLBACK_VALIDITY).unwrap_or(Timestamp::MAX);
            (Some(ManifestWindow { start: now, end }), end)
        }
        (ManifestAction::Install, Some(span)) => (
            Some(ManifestWindow {
                start: span.start,
                end: span.end,
            }),
            span.end,
        ),
        (ManifestAction::Install, None) => (
            None,
            now.checked_add(EMERGENCY_VALIDITY)
                .unwrap_or(Timestamp::MAX),
        ),
    };
    let mut approvals = Vec::new();
    if let Some(s) = &doc.change.approved {
        approvals.push(Approval {
            role: ApprovalRole::Approver,
            by: s.by.clone(),
            at: s.at,
        });
    }
    if let Some(s) = &doc.change.authorised {
        approvals.push(Approval {
            role: ApprovalRole::Authoriser,
            by: s.by.clone(),
            at: s.at,
        });
    }
    Manifest {
        version: patchwarden_api::v1::manifest::MANIFEST_VERSION,
        change: number.to_owned(),
        kind,
        host: host.to_string(),
        action,
        packages,
        window,
        expires_at,
        issued_at: now,
        requester: doc.change.requester.clone(),
        approvals,
        restart: doc.restart_order.clone(),
        reboot_allowed: doc.reboot_allowed,
        health_checks: doc.health_checks.clone(),
    }
    .normalised()
}

/// The job kind for a manifest.
pub(crate) fn job_kind(manifest: Manifest, of_job: Option<Uuid>) -> JobKind {
    let packages = manifest.packages.clone();
    match (manifest.action, of_job) {
        (ManifestAction::Rollback, Some(of)) => JobKind::Rollback {
            packages,
            of_job: of.to_string(),
            manifest,
        },
        _ => JobKind::Install { packages, manifest },
    }
}

/// The recorded result of a finished job.
pub(crate) fn recorded(job: &Job) -> Option<RecordedResult> {
    job.result
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The API's view of a change, with its jobs' states.
pub(crate) async fn view(state: &AppState, stored: &StoredChange) -> Result<ChangeView, ApiError> {
    let doc = ChangeDoc::parse(stored)?;
    let jobs: HashMap<Uuid, Job> = if doc.rings.is_empty() {
        HashMap::new()
    } else {
        state
            .store
            .list_jobs(&JobFilter {
                created_by: Some(stored.number.clone()),
                ..JobFilter::default()
            })
            .await?
            .into_iter()
            .map(|j| (j.id, j))
            .collect()
    };
    Ok(view_of(stored, doc, &jobs))
}

pub(crate) fn view_of(
    stored: &StoredChange,
    doc: ChangeDoc,
    jobs: &HashMap<Uuid, Job>,
) -> ChangeView {
    let rings = doc
        .rings
        .iter()
        .map(|r| RingView {
            name: r.name.clone(),
            test: r.test,
            state: r.state,
            started_at: r.started_at,
            verified_at: r.verified_at,
            hosts: r
                .hosts
                .iter()
                .map(|h| {
                    let job = h.job.and_then(|id| jobs.get(&id));
                    let result = job.and_then(recorded);
                    let rollback = h.rollback_job.and_then(|id| jobs.get(&id));
                    HostRollout {
                        host: h.host,
                        hostname: h.hostname.clone(),
                        job: h.job,
                        job_state: job.map(|j| wire_job_state(j.state)),
                        outcome: result.as_ref().map(|r| r.outcome),
                        detail: result.as_ref().map(|r| r.detail.clone()),
                        changes: result.map(|r| r.changes).unwrap_or_default(),
                        rollback_job: h.rollback_job,
                        rollback_state: rollback.map(|j| wire_job_state(j.state)),
                        nothing_to_do: h.nothing_to_do,
                    }
                })
                .collect(),
        })
        .collect();
    let c = doc.change;
    ChangeView {
        id: stored.id,
        number: stored.number.clone(),
        kind: c.kind,
        state: c.state,
        title: doc.title,
        justification: c.justification,
        risk: doc.risk,
        priority: doc.priority,
        testing: c.testing,
        rollback_plan: c.rollback_plan,
        targets: doc.targets,
        patches: doc.patches,
        restart_order: doc.restart_order,
        health_checks: doc.health_checks,
        reboot_allowed: doc.reboot_allowed,
        hotfix: c.hotfix,
        rollout_plan: doc.rollout,
        requester: c.requester,
        created_at: stored.created_at,
        submitted: c.submitted,
        approved: c.approved,
        authorised: c.authorised,
        tested: c.tested,
        closed: c.closed,
        outcome_reason: c.outcome_reason,
        window_start: doc.window.map(|w| w.0),
        window_end: doc.window.map(|w| w.1),
        warnings: doc.warnings,
        announce_at: doc.announce_at,
        affected_applications: doc.affected,
        template: doc.template.map(|(name, anchor, soak)| {
            (
                name,
                anchor,
                u32::try_from(soak.as_mins()).unwrap_or(u32::MAX),
            )
        }),
        rings,
        halted: doc.halted,
        promoted: doc.promoted,
        revision: stored.revision,
    }
}

/// The states whose changes the rollout engine looks at.
pub(crate) const ACTIVE: [ChangeState; 5] = [
    ChangeState::Scheduled,
    ChangeState::Testing,
    ChangeState::Tested,
    ChangeState::Deploying,
    ChangeState::Failed,
];
