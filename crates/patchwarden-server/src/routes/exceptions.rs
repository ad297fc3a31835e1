//! Exceptions (risk acceptance; seed 003 "Exceptions", seed 002 §3.8/§6.1, clause P16): an
//! operator requests one for findings or whole hosts, with a justification and compensating
//! controls; the data owner acknowledges it when the system holds protected data; someone
//! other than the requester approves or rejects it; it is revoked when the risk changes, and
//! expires on its own. The rules are the core's (`patchwarden_core::exception`), applied by the
//! store inside the transaction that records the change and its audit event.
//!
//! The findings an exception in force covers are reported as `excepted` (here: [`InForce`],
//! loaded once per request and matched by host, vulnerability and package); once it expires,
//! or is revoked, they are back on their own SLA clock with the due date they always had.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::exceptions::{
    ExceptionFinding, ExceptionList, ExceptionQuery, ExceptionReason, ExceptionStateName,
    ExceptionView, FindingException, FindingStanding, NewExceptionRequest,
};
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::exception::{ExceptionRequest, ExceptionState, Standing, standing};
use patchwarden_store::exception::{
    ExceptionAction, ExceptionFilter, ExceptionScope, FindingRef, NewException, StoredException,
};
use patchwarden_store::{FindingState, HostFilter, StoredFinding};
use uuid::Uuid;

use crate::access::{Caller, Scope};
use crate::body::{self, SMALL_BODY};
use crate::clock;
use crate::error::ApiError;
use crate::state::AppState;

/// How far ahead of its due date an open finding is "due soon".
pub(crate) const DUE_SOON: SignedDuration = SignedDuration::from_hours(7 * 24);

/// The exceptions in force at one moment, by the hosts they name: loaded once per request,
/// so that a page of findings is matched in memory, not with a query per finding.
pub(crate) struct InForce {
    now: Timestamp,
    by_host: HashMap<Uuid, Vec<StoredException>>,
}

impl InForce {
    /// No exception in force: for an answer that lists no finding.
    pub(crate) fn empty() -> InForce {
        InForce {
            now: crate::clock::now(),
            by_host: HashMap::new(),
        }
    }

    pub(crate) async fn load(state: &AppState, now: Timestamp) -> Result<InForce, ApiError> {
        let all = state
            .store
            .list_exceptions(&ExceptionFilter {
                in_force_at: Some(now),
                ..ExceptionFilter::default()
            })
            .await?;
        let mut by_host: HashMap<Uuid, Vec<StoredException>> = HashMap::new();
        for e in all {
            for h in e.scope.hosts_named() {
                by_host.entry(h).or_default().push(e.clone());
            }
        }
        Ok(InForce { now, by_host })
    }

    /// The hosts some exception in force names.
    pub(crate) fn hosts(&self) -> BTreeSet<Uuid> {
        self.by_host.keys().copied().collect()
    }

    /// The exception in force covering `f` (the one that ends last), if any.
    pub(crate) fn covering(&self, f: &StoredFinding) -> Option<&StoredException> {
        if f.state != FindingState::Open {
            return None;
        }
        self.by_host
            .get(&f.host)?
            .iter()
            .filter(|e| e.covers_at(f.host, &f.finding, self.now))
            .max_by_key(|e| e.exception.request.expires_at)
    }

    /// An open finding's standing and the exception in force that covers it.
    pub(crate) fn mark(
        &self,
        f: &StoredFinding,
    ) -> (Option<FindingStanding>, Option<FindingException>) {
        if f.state != FindingState::Open {
            return (None, None);
        }
        let cover = self.covering(f);
        let s = standing(
            f.classification.due_at,
            self.now,
            DUE_SOON,
            cover
                .map(|e| std::slice::from_ref(&e.exception))
                .unwrap_or_default(),
        );
        let s = match s {
            Standing::OnTime => FindingStanding::OnTime,
            Standing::DueSoon => FindingStanding::DueSoon,
            Standing::Breached => FindingStanding::Breached,
            Standing::Excepted => FindingStanding::Excepted,
        };
        (
            Some(s),
            cover.map(|e| FindingException {
                id: e.id,
                number: e.number.clone(),
                expires_at: e.exception.request.expires_at,
            }),
        )
    }
}

fn state_name(s: &ExceptionState) -> ExceptionStateName {
    match s {
        ExceptionState::Requested => ExceptionStateName::Requested,
        ExceptionState::Approved { .. } => ExceptionStateName::Approved,
        ExceptionState::Rejected { .. } => ExceptionStateName::Rejected,
        ExceptionState::Revoked { .. } => ExceptionStateName::Revoked,
    }
}

pub(crate) fn view(e: &StoredException, now: Timestamp) -> ExceptionView {
    let decided_by = match &e.exception.state {
        ExceptionState::Requested => None,
        ExceptionState::Approved { by, .. }
        | ExceptionState::Rejected { by, .. }
        | ExceptionState::Revoked { by, .. } => Some(by.clone()),
    };
    ExceptionView {
        id: e.id,
        number: e.number.clone(),
        state: state_name(&e.exception.state),
        in_force: e.exception.in_force(now),
        expired: matches!(e.exception.state, ExceptionState::Approved { .. })
            && now >= e.exception.request.expires_at,
        requester: e.exception.request.requester.clone(),
        expires_at: e.exception.request.expires_at,
        review_due: e.exception.review_due(),
        decided_by,
        findings: e
            .scope
            .findings
            .iter()
            .map(|f| ExceptionFinding {
                host: f.host,
                advisory: f.advisory.clone(),
                package: f.package.clone(),
            })
            .collect(),
        hosts: e.scope.hosts.clone(),
        exception: e.exception.clone(),
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

/// The hosts a provider may see; `None` for everyone else.
async fn visible_hosts(state: &AppState, scope: &Scope) -> Result<Option<HashSet<Uuid>>, ApiError> {
    match scope {
        Scope::All => Ok(None),
        Scope::Groups(groups) => {
            let mut ids = HashSet::new();
            for g in groups {
                let hosts = state
                    .store
                    .list_hosts(&HostFilter {
                        group: Some(g.clone()),
                        ..HostFilter::default()
                    })
                    .await?;
                ids.extend(hosts.into_iter().map(|h| h.id));
            }
            Ok(Some(ids))
        }
    }
}

/// Whether every host `e` names is visible.
fn visible(e: &StoredException, hosts: &Option<HashSet<Uuid>>) -> bool {
    hosts
        .as_ref()
        .is_none_or(|ids| e.scope.hosts_named().iter().all(|h| ids.contains(h)))
}

/// The exception `key` (id or number) if the caller may see it; "not found" otherwise.
pub(crate) async fn scoped(
    state: &AppState,
    caller: &Caller,
    key: &str,
) -> Result<StoredException, ApiError> {
    if key.len() > 64 {
        return Err(ApiError::NotFound);
    }
    let e = state
        .store
        .get_exception(key)
        .await?
        .ok_or(ApiError::NotFound)?;
    let hosts = visible_hosts(state, &caller.scope()).await?;
    if !visible(&e, &hosts) {
        return Err(ApiError::NotFound);
    }
    Ok(e)
}

fn key(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(k)| k)
        .map_err(|e| ApiError::InvalidParameter(e.body_text()))
}

/// Requests an exception for findings and/or whole hosts; the caller is its requester.
#[utoipa::path(
    post,
    path = "/api/v1/exceptions",
    tag = "exceptions",
    request_body = NewExceptionRequest,
    responses(
        (status = 201, description = "Requested", body = ExceptionView),
        (status = 400, description = "Malformed body"),
        (status = 404, description = "A named host is not in the caller's scope"),
        (status = 413, description = "Body too large"),
        (status = 422, description = "The exception rules refuse it (no control, too long a term …)"),
    )
)]
pub(crate) async fn request(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> Result<(StatusCode, Json<ExceptionView>), ApiError> {
    let r: NewExceptionRequest = body::json(&body::read(body, SMALL_BODY).await?)?;
    let now = clock::now();
    let stored = request_exception(&state, &caller, r, now).await?;
    Ok((StatusCode::CREATED, Json(view(&stored, now))))
}

/// Requests an exception: the scope checked and in the caller's groups, the core's rules on
/// the request (a control, the longest term); the caller is its requester.
pub(crate) async fn request_exception(
    state: &AppState,
    caller: &Caller,
    r: NewExceptionRequest,
    now: Timestamp,
) -> Result<StoredException, ApiError> {
    let scope = ExceptionScope {
        findings: r
            .findings
            .iter()
            .map(|f| FindingRef {
                host: f.host,
                advisory: f.advisory.clone(),
                package: f.package.clone(),
            })
            .collect(),
        hosts: r.hosts.clone(),
    };
    scope
        .check()
        .map_err(|e| ApiError::ExceptionInvalid(e.to_string()))?;
    let who = caller.scope();
    for h in scope.hosts_named() {
        state
            .store
            .get_host(h)
            .await?
            .filter(|host| who.admits_group(&host.group))
            .ok_or(ApiError::NotFound)?;
    }
    let max_term = SignedDuration::from_hours(24 * i64::from(state.operators.exception_max_days));
    let exception = ExceptionRequest {
        justification: r.justification,
        explanation: r.explanation,
        controls: r.controls,
        protected_data: r.protected_data,
        requester: caller.user.username.clone(),
        requested_at: now,
        expires_at: r.expires_at,
    }
    .check(max_term)
    .map_err(|e| ApiError::ExceptionInvalid(e.0))?;
    state
        .store
        .create_exception(
            NewException {
                id: Uuid::new_v4(),
                scope,
                exception,
            },
            now,
            AuditEntry::new(now, caller.actor(), "exception.request", ""),
        )
        .await
        .map_err(ApiError::from)
}

/// Exceptions, by number, with filters.
#[utoipa::path(
    get,
    path = "/api/v1/exceptions",
    tag = "exceptions",
    params(ExceptionQuery),
    responses((status = 200, description = "The exceptions", body = ExceptionList))
)]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<ExceptionQuery>, QueryRejection>,
) -> Result<Json<ExceptionList>, ApiError> {
    let q = crate::routes::fleet::query(q)?;
    let now = clock::now();
    let items = list_visible(
        &state,
        &caller,
        &ExceptionFilter {
            state: q.state.map(|s| s.as_str().to_owned()),
            host: q.host,
            in_force_at: None,
        },
    )
    .await?
    .iter()
    .map(|e| view(e, now))
    .collect();
    Ok(Json(ExceptionList { items }))
}

/// The exceptions `filter` selects whose hosts the caller may all see.
pub(crate) async fn list_visible(
    state: &AppState,
    caller: &Caller,
    filter: &ExceptionFilter,
) -> Result<Vec<StoredException>, ApiError> {
    let hosts = visible_hosts(state, &caller.scope()).await?;
    Ok(state
        .store
        .list_exceptions(filter)
        .await?
        .into_iter()
        .filter(|e| visible(e, &hosts))
        .collect())
}

/// An exception by id or number (`EXC-2026-0001`).
#[utoipa::path(
    get,
    path = "/api/v1/exceptions/{id}",
    tag = "exceptions",
    params(("id" = String, Path, description = "The exception's id or number")),
    responses(
        (status = 200, description = "The exception", body = ExceptionView),
        (status = 404, description = "No such exception in the caller's scope"),
    )
)]
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ExceptionView>, ApiError> {
    let e = scoped(&state, &caller, &key(id)?).await?;
    Ok(Json(view(&e, clock::now())))
}

async fn change(
    state: &AppState,
    caller: &Caller,
    key: &str,
    action: ExceptionAction,
) -> Result<Json<ExceptionView>, ApiError> {
    let now = clock::now();
    let changed = act(state, caller, key, action, now).await?;
    Ok(Json(view(&changed, now)))
}

/// Acknowledges, approves, rejects or revokes exception `key` as the caller; the store applies
/// the core's rule inside the transaction that records it.
pub(crate) async fn act(
    state: &AppState,
    caller: &Caller,
    key: &str,
    action: ExceptionAction,
    now: Timestamp,
) -> Result<StoredException, ApiError> {
    let e = scoped(state, caller, key).await?;
    let entry = AuditEntry::new(now, caller.actor(), action.audit_action(), "");
    Ok(state
        .store
        .change_exception(e.id, &caller.user.username, action, now, entry)
        .await?)
}

/// Read an optional empty body (acknowledge, approve): nothing, or `{}`.
async fn empty(body: Body) -> Result<(), ApiError> {
    let bytes = body::read(body, SMALL_BODY).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let _: serde_json::Map<String, serde_json::Value> = body::json(&bytes)?;
    Ok(())
}

/// The data owner acknowledges the exception (required before approval when the system holds
/// protected data; never the requester).
#[utoipa::path(
    post,
    path = "/api/v1/exceptions/{id}/acknowledge",
    tag = "exceptions",
    params(("id" = String, Path, description = "The exception's id or number")),
    responses(
        (status = 200, description = "Acknowledged", body = ExceptionView),
        (status = 404, description = "No such exception in the caller's scope"),
        (status = 409, description = "The exception rules refuse it"),
    )
)]
pub(crate) async fn acknowledge(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<ExceptionView>, ApiError> {
    let id = key(id)?;
    empty(body).await?;
    change(&state, &caller, &id, ExceptionAction::Acknowledge).await
}

/// Approves a requested exception (never by its requester).
#[utoipa::path(
    post,
    path = "/api/v1/exceptions/{id}/approve",
    tag = "exceptions",
    params(("id" = String, Path, description = "The exception's id or number")),
    responses(
        (status = 200, description = "Approved", body = ExceptionView),
        (status = 404, description = "No such exception in the caller's scope"),
        (status = 409, description = "The exception rules refuse it (the requester, no data owner acknowledgement, not requested, expired)"),
    )
)]
pub(crate) async fn approve(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<ExceptionView>, ApiError> {
    let id = key(id)?;
    empty(body).await?;
    change(&state, &caller, &id, ExceptionAction::Approve).await
}

/// Rejects a requested exception, with why.
#[utoipa::path(
    post,
    path = "/api/v1/exceptions/{id}/reject",
    tag = "exceptions",
    params(("id" = String, Path, description = "The exception's id or number")),
    request_body = ExceptionReason,
    responses(
        (status = 200, description = "Rejected", body = ExceptionView),
        (status = 400, description = "Malformed body"),
        (status = 404, description = "No such exception in the caller's scope"),
        (status = 409, description = "The exception rules refuse it"),
    )
)]
pub(crate) async fn reject(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<ExceptionView>, ApiError> {
    let id = key(id)?;
    let r: ExceptionReason = body::json(&body::read(body, SMALL_BODY).await?)?;
    change(
        &state,
        &caller,
        &id,
        ExceptionAction::Reject { reason: r.reason },
    )
    .await
}

/// Revokes an approved exception before its expiry, with why: its findings are back on
/// their SLA clock at once.
#[utoipa::path(
    post,
    path = "/api/v1/exceptions/{id}/revoke",
    tag = "exceptions",
    params(("id" = String, Path, description = "The exception's id or number")),
    request_body = ExceptionReason,
    responses(
        (status = 200, description = "Revoked", body = ExceptionView),
        (status = 400, description = "Malformed body"),
        (status = 404, description = "No such exception in the caller's scope"),
        (status = 409, description = "The exception rules refuse it"),
    )
)]
pub(crate) async fn revoke(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<ExceptionView>, ApiError> {
    let id = key(id)?;
    let r: ExceptionReason = body::json(&body::read(body, SMALL_BODY).await?)?;
    change(
        &state,
        &caller,
        &id,
        ExceptionAction::Revoke { reason: r.reason },
    )
    .await
}
