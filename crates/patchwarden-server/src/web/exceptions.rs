//! The exception pages (risk acceptance, seed 003): the list with its filters in the URL, the
//! request form (findings or whole hosts, the justification, compensating controls, the
//! expiry), an exception with its scope and signatures, and the data owner's
//! acknowledgement, the approval, the rejection and the revocation as forms.
//!
//! The pages call the JSON API's functions (`routes::exceptions`): the same scope checks, the
//! core's rules applied by the store in the transaction that records them. A button is shown
//! when the caller's roles admit its route and the core's rule would let the caller act now
//! (asked of `patchwarden_core::exception` with the caller's name) — so the requester never
//! sees Approve or Acknowledge on their own exception; Reject is not offered to the requester
//! either (four eyes: someone else decides; the requester lets it expire or has it revoked).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use askama::Template;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use jiff::Timestamp;
use patchwarden_api::v1::exceptions::{
    ExceptionFinding, ExceptionStateName, ExceptionView, NewExceptionRequest,
};
use patchwarden_core::exception::{Control, ControlKind, ExceptionState, Justification};
use patchwarden_store::exception::{ExceptionAction, ExceptionFilter, StoredException};
use patchwarden_store::{FindingFilter, FindingState};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    Chrome, PageResult, form_pairs, inline_refusal, render, render_status, see_other, when,
};
use crate::access::{
    Access, Caller, EVERYONE, EXCEPTION_DECIDERS, EXCEPTION_OWNERS, EXCEPTION_REQUESTERS,
    EXCEPTION_REVOKERS,
};
use crate::clock;
use crate::error::ApiError;
use crate::routes::Routes;
use crate::routes::exceptions as api;
use crate::state::AppState;

/// The request form: texts of at most 4 KiB each, a few controls, the scope.
const REQUEST_FORM: u64 = 64 * 1024;
/// An action's form: a reason.
const ACTION_FORM: u64 = 8 * 1024;
/// The controls the form has rows for.
const CONTROL_ROWS: usize = 3;
/// The open findings the form offers.
const FINDINGS_OFFERED: u32 = 500;
/// Exceptions on one page of the list.
const PAGE: usize = 50;

/// Declares the exception pages.
pub(crate) fn declare(routes: Routes) -> Routes {
    routes
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/exceptions",
            get(list),
        )
        .page(
            Access::Roles(EXCEPTION_REQUESTERS),
            Method::POST,
            "/exceptions",
            post(request),
        )
        .page(
            Access::Roles(EXCEPTION_REQUESTERS),
            Method::GET,
            "/exceptions/new",
            get(new_form),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/exceptions/{id}",
            get(show),
        )
        .page(
            Access::Roles(EXCEPTION_OWNERS),
            Method::POST,
            "/exceptions/{id}/acknowledge",
            post(acknowledge),
        )
        .page(
            Access::Roles(EXCEPTION_DECIDERS),
            Method::POST,
            "/exceptions/{id}/approve",
            post(approve),
        )
        .page(
            Access::Roles(EXCEPTION_DECIDERS),
            Method::POST,
            "/exceptions/{id}/reject",
            post(reject),
        )
        .page(
            Access::Roles(EXCEPTION_REVOKERS),
            Method::POST,
            "/exceptions/{id}/revoke",
            post(revoke),
        )
}

fn justification_name(j: Justification) -> &'static str {
    match j {
        Justification::NoVendorPatch => "no vendor patch",
        Justification::PatchCausesInstability => "the patch causes instability",
        Justification::Other => "other",
    }
}

fn control_name(k: ControlKind) -> &'static str {
    match k {
        ControlKind::NetworkSegmentation => "network segmentation",
        ControlKind::AccessControlList => "access control list",
        ControlKind::IntrusionPrevention => "intrusion prevention",
        ControlKind::Other => "other",
    }
}

fn badge(v: &ExceptionView) -> (&'static str, &'static str) {
    if v.in_force {
        ("in force", "ok")
    } else if v.expired {
        ("expired", "warn")
    } else {
        match v.state {
            ExceptionStateName::Requested => ("requested", "medium"),
            ExceptionStateName::Approved => ("approved", "ok"),
            ExceptionStateName::Rejected => ("rejected", "bad"),
            ExceptionStateName::Revoked => ("revoked", "bad"),
        }
    }
}

fn key(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(k)| k)
        .map_err(|e| ApiError::InvalidParameter(e.body_text()))
}

// ---------------------------------------------------------------------------------------
// The list

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    state: Option<String>,
    host: Option<String>,
    page: Option<u32>,
}

struct Row {
    number: String,
    state: &'static str,
    badge: &'static str,
    requester: String,
    justification: &'static str,
    scope: String,
    expires: String,
    review: String,
    decided_by: String,
}

#[derive(Template)]
#[template(path = "exceptions_list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    state: String,
    host: String,
    page: usize,
    pages: usize,
    total: usize,
    prev: Option<String>,
    next: Option<String>,
    may_request: bool,
}

fn list_url(state: &Option<String>, host: &Option<String>, page: usize) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(s) = state {
        pairs.push(("state", s.clone()));
    }
    if let Some(h) = host {
        pairs.push(("host", h.clone()));
    }
    if page > 1 {
        pairs.push(("page", page.to_string()));
    }
    let q = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if q.is_empty() {
        "/exceptions".into()
    } else {
        format!("/exceptions?{q}")
    }
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> PageResult {
    let q = crate::routes::fleet::query(q)?;
    let wanted = q.state.filter(|s| !s.is_empty());
    let host_text = q.host.filter(|s| !s.is_empty());
    let name = match wanted.as_deref() {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<ExceptionStateName>(serde_json::Value::String(s.into()))
                .map_err(|_| {
                    ApiError::InvalidParameter(format!(
                        "state {s:?}: requested, approved, rejected or revoked"
                    ))
                })?,
        ),
    };
    let host = host_text
        .as_deref()
        .map(|h| {
            Uuid::parse_str(h)
                .map_err(|_| ApiError::InvalidParameter(format!("host {h:?} is not a host id")))
        })
        .transpose()?;
    let page = match q.page.unwrap_or(1) {
        0 => return Err(ApiError::InvalidParameter("page 0: pages count from 1".into()).into()),
        n => n as usize,
    };
    let now = clock::now();
    let found = api::list_visible(
        &state,
        &caller,
        &ExceptionFilter {
            state: name.map(|s| s.as_str().to_owned()),
            host,
            in_force_at: None,
        },
    )
    .await?;
    let total = found.len();
    let pages = total.div_ceil(PAGE).max(1);
    let rows = found
        .iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .map(|e| {
            let v = api::view(e, now);
            let (state, badge) = badge(&v);
            Row {
                number: v.number.clone(),
                state,
                badge,
                requester: v.requester.clone(),
                justification: justification_name(v.exception.request.justification),
                scope: format!(
                    "{} finding(s), {} whole host(s)",
                    v.findings.len(),
                    v.hosts.len()
                ),
                expires: when(v.expires_at),
                review: when(v.review_due),
                decided_by: v.decided_by.clone().unwrap_or_default(),
            }
        })
        .collect();
    let chrome = Chrome::new(&caller, "exceptions");
    Ok(render(&ListPage {
        rows,
        state: wanted.clone().unwrap_or_default(),
        host: host_text.clone().unwrap_or_default(),
        page,
        pages,
        total,
        prev: (page > 1).then(|| list_url(&wanted, &host_text, page - 1)),
        next: (page < pages).then(|| list_url(&wanted, &host_text, page + 1)),
        may_request: chrome.can(EXCEPTION_REQUESTERS),
        chrome,
    }))
}

// ---------------------------------------------------------------------------------------
// The request form

/// The form as typed, kept so that a refused form comes back filled in.
#[derive(Debug, Default, Clone)]
struct RequestForm {
    justification: String,
    explanation: String,
    controls: Vec<(String, String)>,
    protected_data: bool,
    expires_on: String,
    /// `HOST|ADVISORY|PACKAGE`.
    findings: BTreeSet<String>,
    hosts: BTreeSet<String>,
}

impl RequestForm {
    fn blank() -> RequestForm {
        RequestForm {
            justification: "no_vendor_patch".into(),
            controls: vec![(String::new(), String::new()); CONTROL_ROWS],
            ..RequestForm::default()
        }
    }

    fn read(pairs: Vec<(String, String)>) -> Result<RequestForm, ApiError> {
        let mut f = RequestForm {
            controls: vec![(String::new(), String::new()); CONTROL_ROWS],
            ..RequestForm::default()
        };
        let mut seen = BTreeSet::new();
        for (k, v) in pairs {
            if !matches!(k.as_str(), "finding" | "host") && !seen.insert(k.clone()) {
                return Err(ApiError::MalformedBody(format!(
                    "the form gives {k:?} twice"
                )));
            }
            let row = |prefix: &str| -> Option<usize> {
                k.strip_prefix(prefix)
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| (1..=CONTROL_ROWS).contains(n))
                    .map(|n| n - 1)
            };
            match k.as_str() {
                "csrf_token" => {}
                "justification" => f.justification = v,
                "explanation" => f.explanation = v,
                "protected_data" => f.protected_data = v == "on" || v == "true",
                "expires_on" => f.expires_on = v,
                "finding" => {
                    f.findings.insert(v);
                }
                "host" => {
                    f.hosts.insert(v);
                }
                _ => {
                    if let Some(i) = row("control_kind_") {
                        f.controls[i].0 = v;
                    } else if let Some(i) = row("control_text_") {
                        f.controls[i].1 = v;
                    } else {
                        return Err(ApiError::MalformedBody(format!(
                            "the form has no field {k:?}"
                        )));
                    }
                }
            }
        }
        Ok(f)
    }

    fn request(&self) -> Result<NewExceptionRequest, ApiError> {
        let bad = |m: String| ApiError::MalformedBody(m);
        let justification = match self.justification.as_str() {
            "no_vendor_patch" => Justification::NoVendorPatch,
            "patch_causes_instability" => Justification::PatchCausesInstability,
            "other" => Justification::Other,
            other => return Err(bad(format!("justification {other:?}"))),
        };
        let mut controls = Vec::new();
        for (kind, text) in &self.controls {
            if kind.is_empty() && text.trim().is_empty() {
                continue;
            }
            let kind = match kind.as_str() {
                "network_segmentation" => ControlKind::NetworkSegmentation,
                "access_control_list" => ControlKind::AccessControlList,
                "intrusion_prevention" => ControlKind::IntrusionPrevention,
                "other" | "" => ControlKind::Other,
                other => return Err(bad(format!("control kind {other:?}"))),
            };
            controls.push(Control {
                kind,
                description: text.trim().to_owned(),
            });
        }
        // The expiry is a day: the exception ends at its start, UTC.
        let expires_at = self
            .expires_on
            .trim()
            .parse::<jiff::civil::Date>()
            .ok()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
            .ok_or_else(|| {
                bad(format!(
                    "the expiry {:?}: a date like 2027-03-31",
                    self.expires_on
                ))
            })?;
        let mut findings = Vec::new();
        for f in &self.findings {
            let mut parts = f.splitn(3, '|');
            let (Some(h), Some(advisory), Some(package)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(format!("finding {f:?}: HOST|ADVISORY|PACKAGE")));
            };
            findings.push(ExceptionFinding {
                host: Uuid::parse_str(h)
                    .map_err(|_| bad(format!("host {h:?} is not a host id")))?,
                advisory: advisory.to_owned(),
                package: package.to_owned(),
            });
        }
        let mut hosts = Vec::new();
        for h in &self.hosts {
            hosts
                .push(Uuid::parse_str(h).map_err(|_| bad(format!("host {h:?} is not a host id")))?);
        }
        Ok(NewExceptionRequest {
            justification,
            explanation: self.explanation.trim().to_owned(),
            controls,
            protected_data: self.protected_data,
            expires_at,
            findings,
            hosts,
        })
    }
}

struct OfferedFinding {
    value: String,
    host: String,
    vulnerability: String,
    package: String,
    class: String,
    due: String,
}

struct OfferedHost {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "exception_new.html")]
struct NewPage {
    chrome: Chrome,
    form: RequestForm,
    findings: Vec<OfferedFinding>,
    hosts: Vec<OfferedHost>,
    controls: Vec<(&'static str, &'static str)>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewQuery {
    /// Preselects the findings of this host …
    host: Option<String>,
    /// … of this vulnerability.
    vulnerability: Option<String>,
}

async fn offered(
    state: &AppState,
    caller: &Caller,
) -> Result<(Vec<OfferedFinding>, Vec<OfferedHost>), ApiError> {
    let scope = caller.scope();
    let found = state
        .store
        .list_findings(&FindingFilter {
            state: Some(FindingState::Open),
            limit: Some(FINDINGS_OFFERED),
            ..FindingFilter::default()
        })
        .await?;
    let mut names: BTreeMap<Uuid, Option<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for f in found {
        if let std::collections::btree_map::Entry::Vacant(slot) = names.entry(f.host) {
            let n = state
                .store
                .get_host(f.host)
                .await?
                .filter(|h| scope.admits_group(&h.group))
                .map(|h| h.facts.hostname.clone());
            slot.insert(n);
        }
        let Some(Some(name)) = names.get(&f.host) else {
            continue;
        };
        out.push(OfferedFinding {
            value: format!(
                "{}|{}|{}",
                f.host, f.finding.vulnerability, f.finding.package
            ),
            host: name.clone(),
            vulnerability: f.finding.vulnerability.clone(),
            package: f.finding.package.clone(),
            class: f
                .classification
                .class
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            due: f.classification.due_at.map(when).unwrap_or_default(),
        });
    }
    let hosts = names
        .into_iter()
        .filter_map(|(id, n)| {
            n.map(|name| OfferedHost {
                id: id.to_string(),
                name,
            })
        })
        .collect();
    Ok((out, hosts))
}

async fn new_page(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    form: RequestForm,
    error: Option<String>,
) -> PageResult {
    let (findings, hosts) = offered(state, caller).await?;
    Ok(render_status(
        status,
        &NewPage {
            chrome: Chrome::new(caller, "exceptions"),
            form,
            findings,
            hosts,
            controls: vec![
                ("network_segmentation", "network segmentation"),
                ("access_control_list", "access control list"),
                ("intrusion_prevention", "intrusion prevention"),
                ("other", "other"),
            ],
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
    let mut form = RequestForm::blank();
    let (findings, _) = offered(&state, &caller).await?;
    for f in findings {
        let host_ok = q
            .host
            .as_deref()
            .is_some_and(|h| f.value.starts_with(&format!("{h}|")));
        let vuln_ok = q
            .vulnerability
            .as_deref()
            .is_none_or(|v| f.vulnerability == v);
        if host_ok && vuln_ok {
            form.findings.insert(f.value);
        }
    }
    new_page(&state, &caller, StatusCode::OK, form, None).await
}

pub(crate) async fn request(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> PageResult {
    let form = RequestForm::read(form_pairs(body, REQUEST_FORM).await?)?;
    let made = match form.request() {
        Ok(r) => api::request_exception(&state, &caller, r, clock::now()).await,
        Err(e) => Err(e),
    };
    match made {
        Ok(e) => Ok(see_other(&format!("/exceptions/{}", e.number))),
        Err(e) => {
            let (status, why) = inline_refusal(e)?;
            new_page(&state, &caller, status, form, Some(why)).await
        }
    }
}

// ---------------------------------------------------------------------------------------
// One exception

/// What the page offers the caller.
#[derive(Default)]
struct Actions {
    acknowledge: bool,
    approve: bool,
    reject: bool,
    revoke: bool,
}

struct ScopeLine {
    host: String,
    advisory: String,
    package: String,
}

#[derive(Template)]
#[template(path = "exception_show.html")]
struct ShowPage {
    chrome: Chrome,
    v: ExceptionView,
    state: &'static str,
    badge: &'static str,
    justification: &'static str,
    controls: Vec<(&'static str, String)>,
    findings: Vec<ScopeLine>,
    hosts: Vec<String>,
    expires: String,
    review: String,
    requested: String,
    acknowledged: String,
    decision: String,
    actions: Actions,
    error: Option<String>,
}

/// What the core's rules let the caller do to `e` now, with the roles its routes need.
fn actions(chrome: &Chrome, caller: &Caller, e: &StoredException, now: Timestamp) -> Actions {
    let me = caller.user.username.as_str();
    let x = &e.exception;
    let requester = x.request.requester == me;
    Actions {
        acknowledge: chrome.can(EXCEPTION_OWNERS)
            && x.data_owner_ack.is_none()
            && x.request.protected_data
            && x.acknowledge(me, now).is_ok(),
        approve: chrome.can(EXCEPTION_DECIDERS) && x.approve(me, now).is_ok(),
        reject: chrome.can(EXCEPTION_DECIDERS)
            && !requester
            && x.reject(me, now, "a reason").is_ok(),
        revoke: chrome.can(EXCEPTION_REVOKERS) && x.revoke(me, now, "a reason").is_ok(),
    }
}

async fn show_page(
    state: &AppState,
    caller: &Caller,
    key: &str,
    status: StatusCode,
    error: Option<String>,
) -> PageResult {
    let e = api::scoped(state, caller, key).await?;
    let now = clock::now();
    let chrome = Chrome::new(caller, "exceptions");
    let actions = actions(&chrome, caller, &e, now);
    let v = api::view(&e, now);
    let mut names: BTreeMap<Uuid, String> = BTreeMap::new();
    for h in e.scope.hosts_named() {
        let n = state
            .store
            .get_host(h)
            .await?
            .map(|h| h.facts.hostname.clone())
            .unwrap_or_else(|| h.to_string());
        names.insert(h, n);
    }
    let name = |h: &Uuid| names.get(h).cloned().unwrap_or_else(|| h.to_string());
    let (state_name, badge) = badge(&v);
    let x = &v.exception;
    let decision = match &x.state {
        ExceptionState::Requested => String::new(),
        ExceptionState::Approved { by, at } => format!("approved by {by}, {}", when(*at)),
        ExceptionState::Rejected { by, at, reason } => {
            format!("rejected by {by}, {}: {reason}", when(*at))
        }
        ExceptionState::Revoked { by, at, reason } => {
            format!("revoked by {by}, {}: {reason}", when(*at))
        }
    };
    let page = ShowPage {
        state: state_name,
        badge,
        justification: justification_name(x.request.justification),
        controls: x
            .request
            .controls
            .iter()
            .map(|c| (control_name(c.kind), c.description.clone()))
            .collect(),
        findings: v
            .findings
            .iter()
            .map(|f| ScopeLine {
                host: name(&f.host),
                advisory: f.advisory.clone(),
                package: f.package.clone(),
            })
            .collect(),
        hosts: v.hosts.iter().map(name).collect(),
        expires: when(v.expires_at),
        review: when(v.review_due),
        requested: format!("{}, {}", x.request.requester, when(x.request.requested_at)),
        acknowledged: x
            .data_owner_ack
            .as_ref()
            .map(|(by, at)| format!("{by}, {}", when(*at)))
            .unwrap_or_default(),
        decision,
        actions,
        error,
        chrome,
        v,
    };
    Ok(render_status(status, &page))
}

pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> PageResult {
    let k = key(id)?;
    show_page(&state, &caller, &k, StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionForm {
    #[serde(default)]
    #[allow(dead_code)] // checked by the access middleware, named here so it is known
    csrf_token: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Act {
    Acknowledge,
    Approve,
    Reject,
    Revoke,
}

async fn act(
    state: Arc<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Body,
    what: Act,
) -> PageResult {
    let k = key(id)?;
    let f: ActionForm = super::form(body, ACTION_FORM).await?;
    let reason = f.reason.unwrap_or_default();
    let action = match what {
        Act::Acknowledge => ExceptionAction::Acknowledge,
        Act::Approve => ExceptionAction::Approve,
        Act::Reject => ExceptionAction::Reject { reason },
        Act::Revoke => ExceptionAction::Revoke { reason },
    };
    match api::act(&state, &caller, &k, action, clock::now()).await {
        Ok(e) => Ok(see_other(&format!("/exceptions/{}", e.number))),
        Err(e) => {
            let (status, why) = inline_refusal(e)?;
            show_page(&state, &caller, &k, status, Some(why)).await
        }
    }
}

macro_rules! action_route {
    ($name:ident, $what:expr) => {
        pub(crate) async fn $name(
            State(state): State<Arc<AppState>>,
            caller: Caller,
            id: Result<Path<String>, PathRejection>,
            body: Body,
        ) -> PageResult {
            act(state, caller, id, body, $what).await
        }
    };
}

action_route!(acknowledge, Act::Acknowledge);
action_route!(approve, Act::Approve);
action_route!(reject, Act::Reject);
action_route!(revoke, Act::Revoke);
