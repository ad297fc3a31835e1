//! The change pages: the list (filters and page in the URL), the patch control form that
//! creates a draft from findings (seed 000, Appendix A), a change with its signatures, its
//! schedule, its rollout per ring and per host and its timeline, and one form per event of
//! the change process.
//!
//! Everything goes through the functions the JSON API uses (`crate::changes`): the same
//! checks, the same audit entries, the same refusals — a rule of the core refused is shown
//! on the change's page in the core's words, with the API's status. A button is shown only
//! when the caller's roles admit its route *and* the core's rules would let the caller apply
//! the event now (`changes::allowed_events`): the requester never sees Approve on their own
//! change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use askama::Template;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use jiff::Timestamp;
use patchwarden_api::v1::changes::{
    Baseline, ChangeView, NewChangeRequest, Patch, Risk, RolloutPlan, ScheduleRequest, Targets,
};
use patchwarden_api::v1::fleet::Criticality;
use patchwarden_core::change::{ChangeEvent, ChangeKind, ChangeState, HotfixConditions, Testing};
use patchwarden_store::change::ChangeFilter;
use patchwarden_store::{FindingFilter, FindingState};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    Chrome, PageResult, form_pairs, inline_refusal, render, render_status, see_other, when,
};
use crate::access::{
    Access, CHANGE_APPROVERS, CHANGE_AUTHORISERS, CHANGE_CANCELLERS, CHANGE_IMPLEMENTERS,
    CHANGE_JUDGES, CHANGE_REQUESTERS, Caller, EVERYONE,
};
use crate::changes;
use crate::clock;
use crate::error::ApiError;
use crate::routes::Routes;
use crate::state::AppState;

/// Changes on one page of the list.
const PAGE: usize = 50;
/// The most changes the list looks through for its filters (the API's largest page).
const LIST_LIMIT: u32 = 1000;
/// The patch control form: its texts and up to a few thousand patches and hosts.
const CHANGE_FORM: u64 = 256 * 1024;
/// An action's form: a reason, a date, a ring.
const ACTION_FORM: u64 = 8 * 1024;
/// The open findings the new-change form offers.
const FINDINGS_OFFERED: u32 = 500;
/// The hosts without findings the form offers besides (host groups target the rest).
const HOSTS_OFFERED: u32 = 200;

/// Declares the change pages.
pub(crate) fn declare(routes: Routes) -> Routes {
    routes
        .page(Access::Roles(EVERYONE), Method::GET, "/changes", get(list))
        .page(
            Access::Roles(CHANGE_REQUESTERS),
            Method::POST,
            "/changes",
            post(create),
        )
        .page(
            Access::Roles(CHANGE_REQUESTERS),
            Method::GET,
            "/changes/new",
            get(new_form),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/changes/{number}",
            get(show),
        )
        .page(
            Access::Roles(CHANGE_REQUESTERS),
            Method::POST,
            "/changes/{number}/submit",
            post(submit),
        )
        .page(
            Access::Roles(CHANGE_APPROVERS),
            Method::POST,
            "/changes/{number}/approve",
            post(approve),
        )
        .page(
            Access::Roles(CHANGE_AUTHORISERS),
            Method::POST,
            "/changes/{number}/authorise",
            post(authorise),
        )
        .page(
            Access::Roles(CHANGE_JUDGES),
            Method::POST,
            "/changes/{number}/reject",
            post(reject),
        )
        .page(
            Access::Roles(CHANGE_IMPLEMENTERS),
            Method::POST,
            "/changes/{number}/schedule",
            post(schedule),
        )
        .page(
            Access::Roles(CHANGE_IMPLEMENTERS),
            Method::POST,
            "/changes/{number}/record-testing",
            post(record_testing),
        )
        .page(
            Access::Roles(CHANGE_IMPLEMENTERS),
            Method::POST,
            "/changes/{number}/promote",
            post(promote),
        )
        .page(
            Access::Roles(CHANGE_IMPLEMENTERS),
            Method::POST,
            "/changes/{number}/close",
            post(close),
        )
        .page(
            Access::Roles(CHANGE_CANCELLERS),
            Method::POST,
            "/changes/{number}/cancel",
            post(cancel),
        )
        .page(
            Access::Roles(CHANGE_IMPLEMENTERS),
            Method::POST,
            "/changes/{number}/rollback",
            post(rollback),
        )
}

/// The badge colour of a change's state.
fn state_badge(s: ChangeState) -> &'static str {
    match s {
        ChangeState::Closed | ChangeState::Verified => "ok",
        ChangeState::Rejected | ChangeState::Failed | ChangeState::RolledBack => "bad",
        ChangeState::Cancelled => "",
        ChangeState::Testing | ChangeState::Deploying => "warn",
        _ => "medium",
    }
}

fn parse_state(s: &str) -> Result<ChangeState, ApiError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| ApiError::InvalidParameter(format!("state {s:?} is not a change state")))
}

fn parse_kind(s: &str) -> Result<ChangeKind, ApiError> {
    match s {
        "standard" => Ok(ChangeKind::Standard),
        "normal" => Ok(ChangeKind::Normal),
        "emergency" => Ok(ChangeKind::Emergency),
        other => Err(ApiError::InvalidParameter(format!(
            "class {other:?}: standard, normal or emergency"
        ))),
    }
}

/// A change's number from the path (numbers are short; anything longer is no change).
fn number(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(n) = path.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    if n.len() > 64 {
        return Err(ApiError::NotFound);
    }
    Ok(n)
}

/// An empty field of a filter form means "any".
fn some(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------------------
// The list

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    state: Option<String>,
    /// The change's kind: standard, normal or emergency.
    class: Option<String>,
    /// Changes that touch hosts of this group.
    group: Option<String>,
    requester: Option<String>,
    page: Option<u32>,
}

struct Row {
    number: String,
    title: String,
    kind: &'static str,
    state: &'static str,
    badge: &'static str,
    requester: String,
    created: String,
    window: String,
}

#[derive(Template)]
#[template(path = "changes_list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    state: String,
    class: String,
    group: String,
    requester: String,
    states: Vec<&'static str>,
    page: usize,
    pages: usize,
    total: usize,
    prev: Option<String>,
    next: Option<String>,
    may_create: bool,
}

const STATES: [ChangeState; 14] = [
    ChangeState::Draft,
    ChangeState::Submitted,
    ChangeState::Approved,
    ChangeState::Authorised,
    ChangeState::Scheduled,
    ChangeState::Testing,
    ChangeState::Tested,
    ChangeState::Deploying,
    ChangeState::Verified,
    ChangeState::Closed,
    ChangeState::Rejected,
    ChangeState::Failed,
    ChangeState::RolledBack,
    ChangeState::Cancelled,
];

/// The list's URL with these filters and page.
fn list_url(q: &ListQuery, page: usize) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (k, v) in [
        ("state", &q.state),
        ("class", &q.class),
        ("group", &q.group),
        ("requester", &q.requester),
    ] {
        if let Some(v) = v {
            pairs.push((k, v.clone()));
        }
    }
    if page > 1 {
        pairs.push(("page", page.to_string()));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if query.is_empty() {
        "/changes".into()
    } else {
        format!("/changes?{query}")
    }
}

/// Whether a change touches hosts of group `g`: it names the group, its rollout has hosts
/// of it, or (before the rollout fixed its hosts) a host it names is in it.
async fn touches_group(
    state: &AppState,
    doc: &changes::ChangeDoc,
    g: &str,
) -> Result<bool, ApiError> {
    if doc.targets.groups.iter().any(|t| t == g)
        || doc
            .rings
            .iter()
            .any(|r| r.hosts.iter().any(|h| h.group == g))
    {
        return Ok(true);
    }
    if !doc.rings.is_empty() {
        return Ok(false);
    }
    for id in &doc.targets.hosts {
        if state
            .store
            .get_host(*id)
            .await?
            .is_some_and(|h| h.group == g)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> PageResult {
    let q = crate::routes::fleet::query(q)?;
    let q = ListQuery {
        state: some(q.state),
        class: some(q.class),
        group: some(q.group),
        requester: some(q.requester),
        page: q.page,
    };
    let wanted_state = q.state.as_deref().map(parse_state).transpose()?;
    let wanted_kind = q.class.as_deref().map(parse_kind).transpose()?;
    if q.requester.as_ref().is_some_and(|r| r.len() > 128)
        || q.group.as_ref().is_some_and(|g| g.len() > 128)
    {
        return Err(ApiError::InvalidParameter("a filter is longer than 128 bytes".into()).into());
    }
    let page = match q.page.unwrap_or(1) {
        0 => return Err(ApiError::InvalidParameter("page 0: pages count from 1".into()).into()),
        n => n as usize,
    };
    let found = changes::list_visible(
        &state,
        &caller,
        &ChangeFilter {
            states: wanted_state
                .map(|s| s.as_str().to_owned())
                .into_iter()
                .collect(),
            requester: q.requester.clone(),
            limit: Some(LIST_LIMIT),
        },
    )
    .await?;
    let mut matching = Vec::new();
    for (s, doc) in found {
        if wanted_kind.is_some_and(|k| doc.change.kind != k) {
            continue;
        }
        if let Some(g) = &q.group
            && !touches_group(&state, &doc, g).await?
        {
            continue;
        }
        matching.push((s, doc));
    }
    let total = matching.len();
    let pages = total.div_ceil(PAGE).max(1);
    let rows = matching
        .into_iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .map(|(s, doc)| Row {
            number: s.number.clone(),
            title: doc.title.clone(),
            kind: doc.change.kind.as_str(),
            state: doc.change.state.as_str(),
            badge: state_badge(doc.change.state),
            requester: doc.change.requester.clone(),
            created: when(s.created_at),
            window: doc.window.map(|(start, _)| when(start)).unwrap_or_default(),
        })
        .collect();
    let chrome = Chrome::new(&caller, "changes");
    let may_create = chrome.can(CHANGE_REQUESTERS);
    Ok(render(&ListPage {
        rows,
        state: q.state.clone().unwrap_or_default(),
        class: q.class.clone().unwrap_or_default(),
        group: q.group.clone().unwrap_or_default(),
        requester: q.requester.clone().unwrap_or_default(),
        states: STATES.iter().map(|s| s.as_str()).collect(),
        page,
        pages,
        total,
        prev: (page > 1).then(|| list_url(&q, page - 1)),
        next: (page < pages).then(|| list_url(&q, page + 1)),
        may_create,
        chrome,
    }))
}

// ---------------------------------------------------------------------------------------
// The patch control form

/// The form as the person filled it in: kept as text, so that a refused form comes back
/// with what was typed.
#[derive(Debug, Default, Clone)]
struct ChangeForm {
    title: String,
    kind: String,
    justification: String,
    risk: String,
    priority: String,
    testing: String,
    testing_reason: String,
    rollback_plan: String,
    groups: String,
    hosts: BTreeSet<String>,
    findings: BTreeSet<String>,
    patches: String,
    min_criticality: String,
    min_age_days: String,
    security_updates: bool,
    restart_order: String,
    reboot_allowed: bool,
    hotfix: bool,
    hotfix_specific_issue: bool,
    hotfix_documentation_reviewed: bool,
    hotfix_tested: bool,
    hotfix_greater_risk: bool,
    test_ring: String,
    soak_minutes: String,
    max_failures: String,
    gates: String,
}

impl ChangeForm {
    fn blank() -> ChangeForm {
        ChangeForm {
            kind: "normal".into(),
            risk: "medium".into(),
            testing: "required".into(),
            test_ring: "test".into(),
            soak_minutes: "0".into(),
            max_failures: "0".into(),
            ..ChangeForm::default()
        }
    }

    /// Reads the posted pairs; an unknown field or a repeated single field is malformed.
    fn read(pairs: Vec<(String, String)>) -> Result<ChangeForm, ApiError> {
        let mut f = ChangeForm {
            kind: String::new(),
            risk: String::new(),
            testing: String::new(),
            ..ChangeForm::default()
        };
        let mut seen = BTreeSet::new();
        for (k, v) in pairs {
            let single = !matches!(k.as_str(), "host" | "finding");
            if single && !seen.insert(k.clone()) {
                return Err(ApiError::MalformedBody(format!(
                    "the form gives {k:?} twice"
                )));
            }
            let on = v == "on" || v == "true" || v == "yes";
            match k.as_str() {
                "csrf_token" => {}
                "title" => f.title = v,
                "kind" => f.kind = v,
                "justification" => f.justification = v,
                "risk" => f.risk = v,
                "priority" => f.priority = v,
                "testing" => f.testing = v,
                "testing_reason" => f.testing_reason = v,
                "rollback_plan" => f.rollback_plan = v,
                "groups" => f.groups = v,
                "host" => {
                    f.hosts.insert(v);
                }
                "finding" => {
                    f.findings.insert(v);
                }
                "patches" => f.patches = v,
                "min_criticality" => f.min_criticality = v,
                "min_age_days" => f.min_age_days = v,
                "security_updates" => f.security_updates = on,
                "restart_order" => f.restart_order = v,
                "reboot_allowed" => f.reboot_allowed = on,
                "hotfix" => f.hotfix = on,
                "hotfix_specific_issue" => f.hotfix_specific_issue = on,
                "hotfix_documentation_reviewed" => f.hotfix_documentation_reviewed = on,
                "hotfix_tested" => f.hotfix_tested = on,
                "hotfix_greater_risk" => f.hotfix_greater_risk = on,
                "test_ring" => f.test_ring = v,
                "soak_minutes" => f.soak_minutes = v,
                "max_failures" => f.max_failures = v,
                "gates" => f.gates = v,
                other => {
                    return Err(ApiError::MalformedBody(format!(
                        "the form has no field {other:?}"
                    )));
                }
            }
        }
        Ok(f)
    }

    /// The API's request, or which field is wrong. The texts' own limits and the rules on
    /// the form are `changes::create`'s.
    fn request(&self) -> Result<NewChangeRequest, ApiError> {
        let bad = |m: String| ApiError::MalformedBody(m);
        let kind = match self.kind.as_str() {
            "normal" => ChangeKind::Normal,
            "emergency" => ChangeKind::Emergency,
            other => return Err(bad(format!("kind {other:?}: normal or emergency"))),
        };
        let risk = match self.risk.as_str() {
            "low" => Risk::Low,
            "medium" => Risk::Medium,
            "high" => Risk::High,
            other => return Err(bad(format!("risk {other:?}: low, medium or high"))),
        };
        let testing = match self.testing.as_str() {
            "required" => Testing::Required,
            "not_required" => Testing::NotRequired {
                reason: self.testing_reason.trim().to_owned(),
            },
            other => return Err(bad(format!("testing {other:?}: required or not_required"))),
        };
        let list = |s: &str| -> Vec<String> {
            s.split([',', '\n'])
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut hosts = Vec::with_capacity(self.hosts.len());
        for h in &self.hosts {
            hosts
                .push(Uuid::parse_str(h).map_err(|_| bad(format!("host {h:?} is not a host id")))?);
        }
        let mut patches = Vec::new();
        for (i, line) in self.patches.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [] => {}
                [package, version] => patches.push(Patch {
                    package: (*package).into(),
                    version: (*version).into(),
                    ecosystem: None,
                }),
                [package, version, ecosystem] => patches.push(Patch {
                    package: (*package).into(),
                    version: (*version).into(),
                    ecosystem: Some((*ecosystem).into()),
                }),
                _ => {
                    return Err(bad(format!(
                        "patch line {}: \"PACKAGE VERSION [ECOSYSTEM]\"",
                        i + 1
                    )));
                }
            }
        }
        let number = |field: &str, s: &str| -> Result<u32, ApiError> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(0);
            }
            s.parse()
                .map_err(|_| bad(format!("the {field} {s:?} is not a whole number")))
        };
        let min_criticality = match self.min_criticality.as_str() {
            "" => None,
            "low" => Some(Criticality::Low),
            "medium" => Some(Criticality::Medium),
            "high" => Some(Criticality::High),
            "emergency" => Some(Criticality::Emergency),
            other => return Err(bad(format!("criticality {other:?}"))),
        };
        let min_age_days = match self.min_age_days.trim() {
            "" => None,
            s => Some(number("minimum age", s)?),
        };
        let test_ring = match self.test_ring.trim() {
            "" => "test".to_owned(),
            s => s.to_owned(),
        };
        Ok(NewChangeRequest {
            kind,
            title: self.title.trim().to_owned(),
            justification: self.justification.trim().to_owned(),
            risk,
            priority: self.priority.trim().to_owned(),
            testing,
            rollback_plan: self.rollback_plan.trim().to_owned(),
            targets: Targets {
                hosts,
                groups: list(&self.groups),
            },
            patches,
            from_findings: self.findings.iter().cloned().collect(),
            baseline: Baseline {
                min_criticality,
                min_age_days,
                update_kinds: if self.security_updates {
                    vec![patchwarden_core::inventory::UpdateKind::Security]
                } else {
                    Vec::new()
                },
            },
            restart_order: list(&self.restart_order),
            health_checks: Vec::new(),
            reboot_allowed: self.reboot_allowed,
            hotfix: self.hotfix.then_some(HotfixConditions {
                specific_issue: self.hotfix_specific_issue,
                documentation_reviewed: self.hotfix_documentation_reviewed,
                tested_in_test_environment: self.hotfix_tested,
                greater_risk_not_applying: self.hotfix_greater_risk,
            }),
            rollout: RolloutPlan {
                test_ring,
                soak_minutes: number("soak time", &self.soak_minutes)?,
                max_failures: number("failure allowance", &self.max_failures)?,
                gates: list(&self.gates),
                ..RolloutPlan::default()
            },
        })
    }
}

/// One open finding the form offers, by vulnerability, with the hosts it is open on.
struct Offered {
    vulnerability: String,
    packages: String,
    class: String,
    due: String,
    fixed: String,
    hosts: Vec<(String, String)>,
}

/// A host the form offers as a target.
struct OfferedHost {
    id: String,
    name: String,
    group: String,
}

#[derive(Template)]
#[template(path = "change_new.html")]
struct NewPage {
    chrome: Chrome,
    form: ChangeForm,
    offered: Vec<Offered>,
    hosts: Vec<OfferedHost>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewQuery {
    /// Preselects this vulnerability's findings (from a finding's page).
    vulnerability: Option<String>,
    /// Preselects this host.
    host: Option<String>,
}

/// The open findings with a fix on hosts the caller may see, by vulnerability, and the hosts.
async fn offered(
    state: &AppState,
    caller: &Caller,
) -> Result<(Vec<Offered>, Vec<OfferedHost>), ApiError> {
    let findings = state
        .store
        .list_findings(&FindingFilter {
            state: Some(FindingState::Open),
            limit: Some(FINDINGS_OFFERED),
            ..FindingFilter::default()
        })
        .await?;
    let scope = caller.scope();
    let mut host_names: BTreeMap<Uuid, Option<(String, String)>> = BTreeMap::new();
    let mut by_vuln: BTreeMap<String, Offered> = BTreeMap::new();
    for f in findings {
        let Some(fixed) = f.finding.fixed.clone() else {
            continue;
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = host_names.entry(f.host) {
            let h = state
                .store
                .get_host(f.host)
                .await?
                .filter(|h| scope.admits_group(&h.group))
                .map(|h| (h.facts.hostname.clone(), h.group.clone()));
            slot.insert(h);
        }
        let Some(Some((name, _))) = host_names.get(&f.host) else {
            continue;
        };
        let o = by_vuln
            .entry(f.finding.vulnerability.clone())
            .or_insert_with(|| Offered {
                vulnerability: f.finding.vulnerability.clone(),
                packages: String::new(),
                class: String::new(),
                due: String::new(),
                fixed: String::new(),
                hosts: Vec::new(),
            });
        if !o.packages.split(", ").any(|p| p == f.finding.package) {
            if !o.packages.is_empty() {
                o.packages.push_str(", ");
            }
            o.packages.push_str(&f.finding.package);
        }
        if o.fixed.is_empty() {
            o.fixed = fixed;
        }
        if let Some(c) = f.classification.class {
            o.class = c.as_str().to_owned();
        }
        if let Some(due) = f.classification.due_at {
            let d = when(due);
            if o.due.is_empty() || d < o.due {
                o.due = d;
            }
        }
        let host = (f.host.to_string(), name.clone());
        if !o.hosts.contains(&host) {
            o.hosts.push(host);
        }
    }
    // Hosts without findings may be targeted too: the first of the fleet (groups reach the
    // rest).
    for h in state
        .store
        .list_hosts(&patchwarden_store::HostFilter {
            limit: Some(HOSTS_OFFERED),
            ..patchwarden_store::HostFilter::default()
        })
        .await?
    {
        if scope.admits_group(&h.group) {
            host_names
                .entry(h.id)
                .or_insert_with(|| Some((h.facts.hostname.clone(), h.group.clone())));
        }
    }
    let mut hosts: Vec<OfferedHost> = host_names
        .into_iter()
        .filter_map(|(id, h)| {
            h.map(|(name, group)| OfferedHost {
                id: id.to_string(),
                name,
                group,
            })
        })
        .collect();
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((by_vuln.into_values().collect(), hosts))
}

async fn new_page(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    form: ChangeForm,
    error: Option<String>,
) -> PageResult {
    let (offered, hosts) = offered(state, caller).await?;
    Ok(render_status(
        status,
        &NewPage {
            chrome: Chrome::new(caller, "changes"),
            form,
            offered,
            hosts,
            error,
        },
    ))
}

pub(crate) async fn new_form(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<NewQuery>, QueryRejection>,
) -> PageResult {
    let q = crate::routes::fleet::query(q)?;
    let mut form = ChangeForm::blank();
    if let Some(v) = some(q.vulnerability) {
        form.findings.insert(v);
    }
    if let Some(h) = some(q.host) {
        form.hosts.insert(h);
    }
    new_page(&state, &caller, StatusCode::OK, form, None).await
}

pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> PageResult {
    let form = ChangeForm::read(form_pairs(body, CHANGE_FORM).await?)?;
    let made = match form.request() {
        Ok(request) => changes::create(&state, &caller, request, clock::now()).await,
        Err(e) => Err(e),
    };
    match made {
        Ok(stored) => Ok(see_other(&format!("/changes/{}", stored.number))),
        Err(e) => {
            let (status, why) = inline_refusal(e)?;
            new_page(&state, &caller, status, form, Some(why)).await
        }
    }
}

// ---------------------------------------------------------------------------------------
// One change

/// A line of the change's timeline.
struct Moment {
    at: Timestamp,
    when: String,
    what: String,
}

/// One host of a ring, as the page shows it.
struct HostLine {
    hostname: String,
    job: String,
    job_state: String,
    outcome: String,
    detail: String,
    rollback: String,
}

struct RingLine {
    name: String,
    test: bool,
    state: String,
    started: String,
    verified: String,
    done: usize,
    hosts: Vec<HostLine>,
    /// A manual gate the caller may release now.
    promotable: bool,
}

/// The actions the page offers the caller.
#[derive(Default)]
struct Actions {
    submit: bool,
    approve: bool,
    authorise: bool,
    reject: bool,
    schedule: bool,
    record_testing: bool,
    close: bool,
    cancel: bool,
    rollback: bool,
}

impl Actions {
    fn any(&self) -> bool {
        self.submit
            || self.approve
            || self.authorise
            || self.reject
            || self.schedule
            || self.record_testing
            || self.close
            || self.cancel
            || self.rollback
    }
}

#[derive(Template)]
#[template(path = "change_show.html")]
struct ShowPage {
    chrome: Chrome,
    c: ChangeView,
    kind: &'static str,
    state: &'static str,
    badge: &'static str,
    risk: &'static str,
    testing: String,
    hotfix: Vec<(&'static str, bool)>,
    signatures: Vec<(&'static str, String)>,
    /// The hosts the form names, by name (the first hundred).
    hosts_named: Vec<String>,
    window: String,
    announce: String,
    rings: Vec<RingLine>,
    timeline: Vec<Moment>,
    actions: Actions,
    templates: Vec<String>,
    error: Option<String>,
    notice: Option<String>,
}

fn signed(s: &Option<patchwarden_core::change::Signed>) -> String {
    s.as_ref()
        .map(|s| format!("{}, {}", s.by, when(s.at)))
        .unwrap_or_default()
}

fn lower<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s.replace('_', " "),
        _ => String::new(),
    }
}

fn timeline(c: &ChangeView) -> Vec<Moment> {
    let mut out = vec![Moment {
        at: c.created_at,
        when: String::new(),
        what: format!("drafted by {}", c.requester),
    }];
    let mut add = |s: &Option<patchwarden_core::change::Signed>, what: &str| {
        if let Some(s) = s {
            out.push(Moment {
                at: s.at,
                when: String::new(),
                what: format!("{what} by {}", s.by),
            });
        }
    };
    add(&c.submitted, "submitted");
    add(&c.approved, "approved");
    add(&c.authorised, "authorised");
    add(&c.tested, "testing recorded");
    add(&c.closed, "closed");
    for (ring, s) in &c.promoted {
        out.push(Moment {
            at: s.at,
            when: String::new(),
            what: format!("ring {ring} promoted by {}", s.by),
        });
    }
    for r in &c.rings {
        if let Some(t) = r.started_at {
            out.push(Moment {
                at: t,
                when: String::new(),
                what: format!("ring {} started", r.name),
            });
        }
        if let Some(t) = r.verified_at {
            out.push(Moment {
                at: t,
                when: String::new(),
                what: format!("ring {} verified", r.name),
            });
        }
    }
    out.sort_by_key(|m| m.at);
    for m in &mut out {
        m.when = when(m.at);
    }
    out
}

async fn show_page(
    state: &AppState,
    caller: &Caller,
    n: &str,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> PageResult {
    let (stored, doc) = changes::visible(state, caller, n).await?;
    let now = clock::now();
    let chrome = Chrome::new(caller, "changes");
    let allowed = changes::allowed_events(caller, &doc.change, now);
    let may = |roles, f: fn(&ChangeEvent) -> bool| chrome.can(roles) && allowed.iter().any(f);
    let actions = Actions {
        submit: may(CHANGE_REQUESTERS, |e| matches!(e, ChangeEvent::Submit)),
        approve: may(CHANGE_APPROVERS, |e| matches!(e, ChangeEvent::Approve)),
        authorise: may(CHANGE_AUTHORISERS, |e| matches!(e, ChangeEvent::Authorise)),
        reject: may(CHANGE_JUDGES, |e| matches!(e, ChangeEvent::Reject { .. })),
        schedule: may(CHANGE_IMPLEMENTERS, |e| matches!(e, ChangeEvent::Schedule)),
        record_testing: may(CHANGE_IMPLEMENTERS, |e| {
            matches!(e, ChangeEvent::RecordTesting)
        }),
        close: may(CHANGE_IMPLEMENTERS, |e| matches!(e, ChangeEvent::Close)),
        cancel: may(CHANGE_CANCELLERS, |e| {
            matches!(e, ChangeEvent::Cancel { .. })
        }),
        rollback: may(CHANGE_IMPLEMENTERS, |e| {
            matches!(e, ChangeEvent::RollBack { .. })
        }),
    };
    let rollout_live = matches!(
        doc.change.state,
        ChangeState::Scheduled
            | ChangeState::Testing
            | ChangeState::Tested
            | ChangeState::Deploying
    );
    let gates_open: Vec<String> = if rollout_live && chrome.can(CHANGE_IMPLEMENTERS) {
        doc.rollout
            .gates
            .iter()
            .filter(|g| !doc.promoted.iter().any(|(r, _)| r == *g))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let templates = if actions.schedule {
        changes::calendar_entries(state, now)
            .await?
            .into_iter()
            .filter(|e| {
                matches!(
                    e.spec,
                    patchwarden_api::v1::changes::CalendarSpec::Template(_)
                )
            })
            .map(|e| e.name)
            .collect()
    } else {
        Vec::new()
    };
    let c = changes::view(state, &stored).await?;
    let rings = c
        .rings
        .iter()
        .map(|r| RingLine {
            name: r.name.clone(),
            test: r.test,
            state: lower(&r.state),
            started: r.started_at.map(when).unwrap_or_default(),
            verified: r.verified_at.map(when).unwrap_or_default(),
            done: r
                .hosts
                .iter()
                .filter(|h| {
                    h.nothing_to_do
                        || h.job_state == Some(patchwarden_api::v1::jobs::JobState::Succeeded)
                })
                .count(),
            hosts: r
                .hosts
                .iter()
                .map(|h| HostLine {
                    hostname: h.hostname.clone(),
                    job: h.job.map(|j| j.to_string()).unwrap_or_default(),
                    job_state: if h.nothing_to_do {
                        "nothing to do".into()
                    } else {
                        h.job_state
                            .as_ref()
                            .map(lower)
                            .unwrap_or_else(|| "not started".into())
                    },
                    outcome: h.outcome.as_ref().map(lower).unwrap_or_default(),
                    detail: h.detail.clone().unwrap_or_default(),
                    rollback: match (&h.rollback_job, &h.rollback_state) {
                        (Some(_), Some(s)) => lower(s),
                        (Some(_), None) => "made".into(),
                        _ => String::new(),
                    },
                })
                .collect(),
            promotable: gates_open.contains(&r.name),
        })
        .collect();
    let testing = match &c.testing {
        Testing::Required => "Required".to_owned(),
        Testing::NotRequired { reason } => format!("Not required: {reason}"),
    };
    let hotfix = c
        .hotfix
        .map(|h| {
            vec![
                ("A specific issue on our systems needs it", h.specific_issue),
                (
                    "Its documentation has been reviewed",
                    h.documentation_reviewed,
                ),
                (
                    "It was tested in a test environment",
                    h.tested_in_test_environment,
                ),
                (
                    "Not applying it is the greater risk",
                    h.greater_risk_not_applying,
                ),
            ]
        })
        .unwrap_or_default();
    let signatures = vec![
        (
            "Requested by",
            format!("{}, {}", c.requester, when(c.created_at)),
        ),
        ("Submitted", signed(&c.submitted)),
        ("Approved by", signed(&c.approved)),
        ("Authorised by", signed(&c.authorised)),
        ("Testing recorded", signed(&c.tested)),
        ("Closed", signed(&c.closed)),
    ];
    let window = match (c.window_start, c.window_end) {
        (Some(a), Some(b)) => format!("{} – {}", when(a), when(b)),
        _ => String::new(),
    };
    let mut hosts_named = Vec::new();
    for id in c.targets.hosts.iter().take(100) {
        hosts_named.push(match state.store.get_host(*id).await? {
            Some(h) => format!("{} ({})", h.facts.hostname, h.group),
            None => id.to_string(),
        });
    }
    if c.targets.hosts.len() > 100 {
        hosts_named.push(format!("and {} more", c.targets.hosts.len() - 100));
    }
    let page = ShowPage {
        hosts_named,
        kind: c.kind.as_str(),
        state: c.state.as_str(),
        badge: state_badge(c.state),
        risk: c.risk.as_str(),
        testing,
        hotfix,
        signatures,
        window,
        announce: c.announce_at.map(when).unwrap_or_default(),
        rings,
        timeline: timeline(&c),
        actions,
        templates,
        error,
        notice,
        chrome,
        c,
    };
    Ok(render_status(status, &page))
}

pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> PageResult {
    let n = number(path)?;
    show_page(&state, &caller, &n, StatusCode::OK, None, None).await
}

// ---------------------------------------------------------------------------------------
// The actions

/// What an action's form may carry; each action reads the fields it needs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionForm {
    #[serde(default)]
    #[allow(dead_code)] // checked by the access middleware, named here so it is known
    csrf_token: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    /// `2026-12-01T20:00` (UTC) or an RFC 3339 time.
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    ring: Option<String>,
}

/// A time from the schedule form: RFC 3339, or the browser's `datetime-local` value read
/// as UTC (the form says so).
fn parse_time(s: &str) -> Result<Timestamp, ApiError> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    s.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| {
            ApiError::MalformedBody(format!(
                "not before {s:?}: a date and time like 2026-12-01T20:00 (UTC)"
            ))
        })
}

/// Which action a form asks for.
#[derive(Debug, Clone, Copy)]
enum Action {
    Submit,
    Approve,
    Authorise,
    Reject,
    Schedule,
    RecordTesting,
    Promote,
    Close,
    Cancel,
    Rollback,
}

/// Carries out `action` on change `n` with the API's functions, then shows the change: after
/// a 303 when it was done, at once with the refusal in the core's words when not.
async fn act(
    state: Arc<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Body,
    action: Action,
) -> PageResult {
    let n = number(path)?;
    let f: ActionForm = super::form(body, ACTION_FORM).await?;
    let now = clock::now();
    let reason = || -> Result<String, ApiError> {
        let r = f.reason.clone().unwrap_or_default();
        if r.len() > 2048 {
            return Err(ApiError::MalformedBody(
                "the reason is longer than 2048 bytes".into(),
            ));
        }
        Ok(r)
    };
    let plain = ScheduleRequest::default;
    let done = async {
        let (event, schedule) = match action {
            Action::Submit => (ChangeEvent::Submit, plain()),
            Action::Approve => (ChangeEvent::Approve, plain()),
            Action::Authorise => (ChangeEvent::Authorise, plain()),
            Action::Reject => (ChangeEvent::Reject { reason: reason()? }, plain()),
            Action::Cancel => (ChangeEvent::Cancel { reason: reason()? }, plain()),
            Action::Rollback => (ChangeEvent::RollBack { reason: reason()? }, plain()),
            Action::RecordTesting => (ChangeEvent::RecordTesting, plain()),
            Action::Close => (ChangeEvent::Close, plain()),
            Action::Schedule => {
                let not_before = some(f.not_before.clone())
                    .map(|s| parse_time(&s))
                    .transpose()?;
                let template = some(f.template.clone());
                if template.as_ref().is_some_and(|t| t.len() > 128) {
                    return Err(ApiError::MalformedBody(
                        "the template name is too long".into(),
                    ));
                }
                (
                    ChangeEvent::Schedule,
                    ScheduleRequest {
                        not_before,
                        template,
                    },
                )
            }
            Action::Promote => {
                let ring = some(f.ring.clone()).ok_or_else(|| {
                    ApiError::MalformedBody("which ring to promote: the form has no ring".into())
                })?;
                if ring.len() > 128 {
                    return Err(ApiError::MalformedBody("the ring name is too long".into()));
                }
                return changes::promote(&state, &caller, &n, &ring, now).await;
            }
        };
        changes::act(&state, &caller, &n, event, schedule, now).await
    }
    .await;
    match done {
        Ok(stored) => Ok(see_other(&format!("/changes/{}", stored.number))),
        Err(e) => {
            let (status, why) = inline_refusal(e)?;
            show_page(&state, &caller, &n, status, Some(why), None).await
        }
    }
}

macro_rules! action_route {
    ($name:ident, $action:expr) => {
        pub(crate) async fn $name(
            State(state): State<Arc<AppState>>,
            caller: Caller,
            path: Result<Path<String>, PathRejection>,
            body: Body,
        ) -> PageResult {
            act(state, caller, path, body, $action).await
        }
    };
}

action_route!(submit, Action::Submit);
action_route!(approve, Action::Approve);
action_route!(authorise, Action::Authorise);
action_route!(reject, Action::Reject);
action_route!(schedule, Action::Schedule);
action_route!(record_testing, Action::RecordTesting);
action_route!(promote, Action::Promote);
action_route!(close, Action::Close);
action_route!(cancel, Action::Cancel);
action_route!(rollback, Action::Rollback);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_into_the_apis_request_and_names_what_is_wrong() {
        let pairs = |s: &str| -> Vec<(String, String)> { serde_urlencoded::from_str(s).unwrap() };
        let f = ChangeForm::read(pairs(
            "csrf_token=x&title=xz&kind=normal&justification=CVE&risk=high&testing=required\
             &rollback_plan=reinstall&groups=web%2C+db&host=7d0c1f3e-55d4-4a0e-9d55-3f4a4a4a4a4a\
             &finding=CVE-2024-3094&finding=CVE-2024-1&patches=xz-utils+5.6.1-1+Debian%3A12\
             &reboot_allowed=on&soak_minutes=30&gates=test",
        ))
        .unwrap();
        let r = f.request().unwrap();
        assert_eq!(r.kind, ChangeKind::Normal);
        assert_eq!(r.targets.groups, vec!["web", "db"]);
        assert_eq!(r.targets.hosts.len(), 1);
        assert_eq!(r.from_findings, vec!["CVE-2024-1", "CVE-2024-3094"]);
        assert_eq!(r.patches[0].ecosystem.as_deref(), Some("Debian:12"));
        assert!(r.reboot_allowed);
        assert_eq!(r.rollout.soak_minutes, 30);
        assert_eq!(r.rollout.gates, vec!["test"]);

        for (bad, why) in [("title=a&title=b", "twice"), ("nonsense=1", "no field")] {
            let e = ChangeForm::read(pairs(bad)).unwrap_err();
            assert!(e.problem().detail.unwrap().contains(why), "{bad}");
        }
        let mut f = ChangeForm::blank();
        f.kind = "standard".into();
        assert!(
            f.request().is_err(),
            "a person does not raise a standard change"
        );
        let mut f = ChangeForm::blank();
        f.patches = "only-a-name".into();
        assert!(f.request().is_err());
        let mut f = ChangeForm::blank();
        f.soak_minutes = "-1".into();
        assert!(f.request().is_err());
    }

    #[test]
    fn schedule_times_are_rfc3339_or_the_browsers_local_form_in_utc() {
        assert_eq!(
            parse_time("2026-12-01T20:00").unwrap().to_string(),
            "2026-12-01T20:00:00Z"
        );
        assert_eq!(
            parse_time("2026-12-01T20:00:00+01:00").unwrap().to_string(),
            "2026-12-01T19:00:00Z"
        );
        assert!(parse_time("tomorrow").is_err());
    }
}
